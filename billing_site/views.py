"""Operational endpoints: health and metrics."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from billing_site import metrics
from billing_site.middleware import DATABASE_UNAVAILABLE, DB_RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 + Retry-After when it does not.

    Anyone may ask, so the answer gives a generic reason: the database's own error names
    its host, port and user. That detail goes to the log.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.error("health check: database unavailable: %s", exc)
        response = JsonResponse({"status": "unhealthy", "database": "down", **DATABASE_UNAVAILABLE}, status=503)
        response["Retry-After"] = str(DB_RETRY_AFTER_SECONDS)
        return response
    return JsonResponse({"status": "healthy", "database": "up"})


def _is_internal(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


def metrics_allowed(request: HttpRequest) -> bool:
    """METRICS_TOKEN set: the bearer token is required. Unset: loopback and private addresses only.

    REMOTE_ADDR is the peer's address: behind a proxy on a private network that is the
    proxy, so a public deployment should set METRICS_TOKEN (or not route /metrics).
    """
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    return _is_internal(request.META.get("REMOTE_ADDR", ""))


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: request latency by route, credit checks, charges, credit and purchases."""
    if not metrics_allowed(request):
        if settings.METRICS_TOKEN:
            response = JsonResponse(
                {"detail": "A valid metrics token is required.", "code": "not_authenticated"}, status=401
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return JsonResponse(
            {"detail": "Metrics are served to internal addresses only (or set METRICS_TOKEN).", "code": "forbidden"},
            status=403,
        )
    return HttpResponse(metrics.render_latest(), content_type=CONTENT_TYPE_LATEST)

"""Middleware that keeps every failure a JSON answer with the right status."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from billing_site import metrics
from billing_site.request_context import (
    REQUEST_ID_ENVIRON,
    REQUEST_ID_HEADER,
    REQUEST_ID_META,
    request_id_from,
    request_id_var,
)

logger = logging.getLogger(__name__)

DB_RETRY_AFTER_SECONDS = 5


DATABASE_UNAVAILABLE = {"detail": "Database unavailable, retry shortly.", "code": "service_unavailable"}


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse(DATABASE_UNAVAILABLE, status=503)
    response["Retry-After"] = str(DB_RETRY_AFTER_SECONDS)
    return response


API_PATH_PREFIXES = ("/v1/", "/health", "/stripe/", "/metrics")


class ApiEdgeMiddleware:
    """What every request needs, inside SecurityMiddleware (whose headers then reach every
    answer, this one's too) and outside everything else:

    - the request id (X-Request-ID in and out, on every log line) and latency metrics,
      labelled by the matched URL pattern's name (one series per endpoint, whatever ids
      appear in paths);
    - 413 for a declared body over MAX_REQUEST_BODY_BYTES, before anything reads it;
    - a dead or stuck database answers 503 + Retry-After everywhere, never a 500 page;
    - API paths never answer a non-JSON error, and no path Django's DEBUG pages (HTML or
      plain text: they show the traceback and the settings);
    - Content-Length on every complete response, the ones made here included.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_from(request.META.get(REQUEST_ID_META))
        token = request_id_var.set(request_id)
        request.META[REQUEST_ID_ENVIRON] = request_id  # META is the WSGI environ
        try:
            response = self._bounded(request)
            if (
                response.status_code >= 400
                and "json" not in response.get("Content-Type", "")
                and (response.status_code in _TECHNICAL_PAGE_STATUSES or request.path.startswith(API_PATH_PREFIXES))
            ):
                response = JsonResponse(error_body(response.status_code), status=response.status_code)
            if not response.streaming and "Content-Length" not in response:
                response["Content-Length"] = str(len(response.content))
            response[REQUEST_ID_HEADER] = request_id
            match = request.resolver_match
            metrics.observe_request(
                route=(match.view_name or "unnamed") if match is not None else "unmatched",
                method=request.method or "",
                status=response.status_code,
                seconds=time.perf_counter() - started,
            )
            return response
        finally:
            request_id_var.reset(token)

    def _bounded(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header.", "code": "bad_request"}, status=400)
        limit = settings.MAX_REQUEST_BODY_BYTES
        if length > limit and not request.path.startswith("/admin/"):
            return JsonResponse(
                {"detail": f"Request body too large: the limit is {limit} bytes.", "code": "payload_too_large"},
                status=413,
            )
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            logger.error("database unavailable: %s", exception)
            return database_unavailable_response()
        return None


# The bodies of the error answers that no view shaped (urls.py's handler400/403/404/500).
ERROR_BODIES = {
    400: {"detail": "Bad request.", "code": "bad_request"},
    403: {"detail": "Forbidden.", "code": "forbidden"},
    404: {"detail": "Not found.", "code": "not_found"},
    500: {"detail": "Internal server error.", "code": "server_error"},
}
# With DEBUG on, Django answers an uncaught exception (500) and a SuspiciousOperation (400)
# with its technical page -- the traceback and the settings -- as HTML, or as plain text for
# any other Accept. Replaced on every path, the admin's included.
_TECHNICAL_PAGE_STATUSES = (400, 500)


def error_body(status: int) -> dict[str, str]:
    return ERROR_BODIES.get(status, {"detail": "Request failed.", "code": "error"})

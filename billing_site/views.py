"""Operational endpoints: health."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from billing_site.middleware import DB_RETRY_AFTER_SECONDS


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 + Retry-After when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        response = JsonResponse(
            {"status": "unhealthy", "database": "down", "detail": str(exc)[:200], "code": "service_unavailable"},
            status=503,
        )
        response["Retry-After"] = str(DB_RETRY_AFTER_SECONDS)
        return response
    return JsonResponse({"status": "healthy", "database": "up"})

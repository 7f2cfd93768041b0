"""Middleware that keeps every failure a JSON answer with the right status."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

DB_RETRY_AFTER_SECONDS = 5


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {"detail": "Database unavailable, retry shortly.", "code": "service_unavailable"}, status=503
    )
    response["Retry-After"] = str(DB_RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A dead or stuck database answers 503 + Retry-After everywhere, never a 500 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            logger.error("database unavailable: %s", exception)
            return database_unavailable_response()
        return None


class BodySizeLimitMiddleware:
    """413 for a declared body over the limit, before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
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


API_PATH_PREFIXES = ("/v1/", "/health", "/stripe/", "/metrics")


class JsonErrorPagesMiddleware:
    """API paths never answer an HTML error page, not even Django's DEBUG pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and response.get("Content-Type", "").startswith("text/html")
            and request.path.startswith(API_PATH_PREFIXES)
        ):
            detail = "Not found." if response.status_code == 404 else "Request failed."
            code = "not_found" if response.status_code == 404 else "error"
            return JsonResponse({"detail": detail, "code": code}, status=response.status_code)
        return response

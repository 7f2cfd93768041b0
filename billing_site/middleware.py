"""Middleware that keeps every failure a JSON answer with the right status."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as _auth
from django.contrib.messages import middleware as _messages
from django.contrib.sessions import middleware as _session
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware import clickjacking as _clickjacking
from django.middleware import common as _common
from django.middleware import csrf as _csrf
from django.middleware.security import SecurityMiddleware

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
# The billing API's paths, which run the shorter middleware chain (billing_site.handler).
API_PATH_PREFIX = "/v1/"


class ApiEdgeMiddleware:
    """Outermost, one layer for what every request needs (each layer costs every request):

    - the request id (X-Request-ID in and out, on every log line) and latency metrics,
      labelled by the matched URL pattern's name (one series per endpoint, whatever ids
      appear in paths);
    - 413 for a declared body over MAX_REQUEST_BODY_BYTES, before anything reads it;
    - a dead or stuck database answers 503 + Retry-After everywhere, never a 500 page;
    - API paths never answer a non-JSON error, and no path Django's DEBUG pages (HTML or
      plain text: they show the traceback and the settings);
    - Content-Length on every complete response (CommonMiddleware's job, which API paths skip);
    - on API paths, the headers Django's SecurityMiddleware would add (`security_headers`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self._security_headers = security_headers()
        # Only HSTS depends on the request (sent over HTTPS only): otherwise no need to ask.
        self._headers_differ = self._security_headers[False] != self._security_headers[True]

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
            if request.path_info.startswith(API_PATH_PREFIX):
                # No API view sets these, so assigning equals SecurityMiddleware's setdefault.
                for name, value in self._security_headers[self._headers_differ and request.is_secure()]:
                    response[name] = value
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


class _Request:
    """As much of a request as SecurityMiddleware.process_response reads."""

    def __init__(self, secure: bool):
        self.secure = secure

    def is_secure(self) -> bool:
        return self.secure


def security_headers() -> dict[bool, tuple[tuple[str, str], ...]]:
    """The headers Django's SecurityMiddleware adds to a response, for a plain (False) and
    an HTTPS (True) request, worked out once by the middleware itself from the settings.

    API answers get them from ApiEdgeMiddleware, whose chain leaves SecurityMiddleware out
    (billing_site.handler): as a layer of its own, setting the same three headers with
    setdefault, it cost a replay 26k instructions more under gunicorn (bench/NOTES.md). The
    rule stays Django's. Its other job, the redirect to HTTPS, is not one for an API (a redirected
    POST arrives as a GET; TLS ends at the load balancer, and SECURE_SSL_REDIRECT is off).
    """
    middleware = SecurityMiddleware(lambda request: HttpResponse())
    headers = {}
    for secure in (False, True):
        response = HttpResponse()
        before = set(response.headers)
        middleware.process_response(_Request(secure), response)  # type: ignore[arg-type]
        headers[secure] = tuple((name, value) for name, value in response.items() if name not in before)
    return headers


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


# --- Admin-only middleware ------------------------------------------------------------------
# Sessions, CSRF cookies, users and messages serve the admin (and its login page), and
# CommonMiddleware's slash and www redirects are off for the API. API calls authenticate
# with keys and carry no cookies, so on /v1/ paths these middlewares are passed through:
# together they cost a credit check about 20 us of CPU (bench/RESULTS.md). They are
# subclasses, so Django's admin checks still find them. X-Frame-Options guards pages
# against being framed; an API answer is JSON, never a page (1.3% of a replay's CPU).


def _skipped_on_api_paths(base: type) -> type:
    class Middleware(base):  # type: ignore[misc, valid-type]
        def __call__(self, request: HttpRequest) -> HttpResponse:
            if request.path_info.startswith(API_PATH_PREFIX):
                return self.get_response(request)
            return super().__call__(request)

    Middleware.__name__ = Middleware.__qualname__ = base.__name__
    Middleware.__doc__ = f"{base.__module__}.{base.__name__}, passed through on API paths."
    return Middleware


SessionMiddleware = _skipped_on_api_paths(_session.SessionMiddleware)
CommonMiddleware = _skipped_on_api_paths(_common.CommonMiddleware)
CsrfViewMiddleware = _skipped_on_api_paths(_csrf.CsrfViewMiddleware)
AuthenticationMiddleware = _skipped_on_api_paths(_auth.AuthenticationMiddleware)
MessageMiddleware = _skipped_on_api_paths(_messages.MessageMiddleware)
XFrameOptionsMiddleware = _skipped_on_api_paths(_clickjacking.XFrameOptionsMiddleware)

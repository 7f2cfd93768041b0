"""Django's WSGI handler, with a shorter middleware chain for API paths.

Eight of MIDDLEWARE's layers serve pages only (sessions, CSRF, users, messages, common
redirects, static files, the admin's NUL stripping, X-Frame-Options); on `/v1/` each one
already passes the request through untouched (billing_site.middleware), but calling
eight layers that do nothing cost every check and replay about 35k instructions (about
1.5% of its CPU; bench/NOTES.md). So `/v1/` requests run a second chain, built by Django
from MIDDLEWARE without PAGES_ONLY_MIDDLEWARE: the edge middleware alone, which also adds
SecurityMiddleware's headers (billing_site.middleware.security_headers). Django's test
client runs the full chain, which answers API calls the same way
(tests/test_wsgi_handler.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse

from billing_site.middleware import API_PATH_PREFIX


@contextmanager
def _middleware_setting(middleware: list[str]) -> Iterator[None]:
    """MIDDLEWARE as Django's load_middleware reads it, for one chain's making (at startup)."""
    full = settings.MIDDLEWARE
    settings.MIDDLEWARE = middleware
    try:
        yield
    finally:
        settings.MIDDLEWARE = full


class BillingWSGIHandler(WSGIHandler):
    def __init__(self) -> None:
        super().__init__()  # the full chain, for everything but API paths
        self.api = BaseHandler()
        api_middleware = [path for path in settings.MIDDLEWARE if path not in settings.PAGES_ONLY_MIDDLEWARE]
        with _middleware_setting(api_middleware):
            self.api.load_middleware()

    def get_response(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PATH_PREFIX):
            return self.api.get_response(request)
        return super().get_response(request)

"""The WSGI application runs API paths through a shorter middleware chain, with the same answers.

billing_site.handler: `/v1/` requests skip PAGES_ONLY_MIDDLEWARE (which passes them
through anyway); pages run everything. Driven here as gunicorn drives it, in-process.
"""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from billing_site.handler import BillingWSGIHandler
from tests.factories import create_api_key

pytestmark = pytest.mark.django_db

VOLATILE = {"date", "x-request-id"}
USER = {"oauth_provider": "oauth:google", "external_id": "handler@example.com"}


def wsgi_call(
    app: BillingWSGIHandler, method: str, path: str, body: object = None, scheme: str = "http", **headers: str
):
    raw = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "443" if scheme == "https" else "80",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(raw),
        "CONTENT_LENGTH": str(len(raw)),
        "CONTENT_TYPE": "application/json",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    answer: dict[str, object] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        answer["status"] = int(status.split()[0])
        answer["headers"] = {name.lower(): value for name, value in response_headers}

    # As Django's test client does: the test's transaction holds the connection, which
    # close_old_connections (on request_started and request_finished) would close.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = app(environ, start_response)
        answer["body"] = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer


def layers(chain: object) -> list[str]:
    """The middleware of a chain Django built, outermost first (each is wrapped in `inner`)."""
    names = []
    instance = getattr(chain, "__wrapped__", None)
    while instance is not None and hasattr(instance, "get_response"):
        names.append(f"{type(instance).__module__}.{type(instance).__name__}")
        instance = getattr(instance.get_response, "__wrapped__", None)
    return names


def test_api_paths_skip_the_pages_only_middleware_and_pages_run_all_of_it():
    app = BillingWSGIHandler()

    assert layers(app.api._middleware_chain) == ["billing_site.middleware.ApiEdgeMiddleware"]
    assert len(layers(app._middleware_chain)) == len(settings.MIDDLEWARE) == 10

    api_paths = []
    api_get_response = app.api.get_response
    app.api.get_response = lambda request: api_paths.append(request.path) or api_get_response(request)
    wsgi_call(app, "POST", "/v1/billing/credits/check", USER)
    wsgi_call(app, "GET", "/admin/login/")
    wsgi_call(app, "GET", "/health")
    assert api_paths == ["/v1/billing/credits/check"]


@pytest.mark.parametrize(
    ("method", "path", "body", "with_key", "status"),
    [
        ("POST", "/v1/billing/credits/check", USER, True, 200),
        ("POST", "/v1/billing/charges", USER, True, 422),  # no amount or key
        ("POST", "/v1/billing/credits/check", USER, False, 401),
        ("GET", "/v1/no-such-endpoint", None, True, 404),
    ],
)
def test_an_api_call_answers_as_through_the_full_chain(method, path, body, with_key, status):
    key = create_api_key(permissions="read,write")
    headers = {"X_API_KEY": key} if with_key else {}
    through_wsgi = wsgi_call(BillingWSGIHandler(), method, path, body, **headers)
    client = Client(**{f"HTTP_{name}": value for name, value in headers.items()})
    full = client.generic(method, path, json.dumps(body) if body is not None else "", content_type="application/json")

    assert through_wsgi["status"] == full.status_code == status
    assert through_wsgi["body"] == full.content
    full_headers = {name.lower(): value for name, value in full.headers.items()}
    assert {k: v for k, v in through_wsgi["headers"].items() if k not in VOLATILE} == {
        k: v for k, v in full_headers.items() if k not in VOLATILE
    }
    assert "x-frame-options" not in through_wsgi["headers"]
    # SecurityMiddleware's headers, from the edge (its layer is not in the API chain).
    assert through_wsgi["headers"]["x-content-type-options"] == "nosniff"
    assert through_wsgi["headers"]["referrer-policy"] == "same-origin"
    assert through_wsgi["headers"]["cross-origin-opener-policy"] == "same-origin"
    assert "strict-transport-security" not in through_wsgi["headers"]  # HSTS is off by default


def test_a_page_still_runs_the_pages_middleware():
    answer = wsgi_call(BillingWSGIHandler(), "GET", "/admin/login/")

    assert answer["status"] == 200
    assert answer["headers"]["x-frame-options"] == "DENY"
    assert "csrftoken" in answer["headers"].get("set-cookie", "")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_api_answers_carry_hsts_over_https_as_through_the_full_chain(settings, scheme):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    key = create_api_key(permissions="read,write")
    through_wsgi = wsgi_call(BillingWSGIHandler(), "POST", "/v1/billing/credits/check", USER, scheme, X_API_KEY=key)
    full = Client(HTTP_X_API_KEY=key).post(
        "/v1/billing/credits/check", USER, content_type="application/json", secure=scheme == "https"
    )

    assert through_wsgi["status"] == full.status_code == 200
    assert through_wsgi["headers"].get("strict-transport-security") == full.headers.get("Strict-Transport-Security")
    if scheme == "https":
        assert through_wsgi["headers"]["strict-transport-security"] == "max-age=3600; includeSubDomains"
    else:
        assert "strict-transport-security" not in through_wsgi["headers"]
    assert through_wsgi["headers"]["x-content-type-options"] == "nosniff"

"""One middleware chain (Django's, plus the edge): complete JSON answers with their length,
request id and security headers, on API paths and pages alike."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client

from tests.conftest import charge_body
from tests.factories import create_api_key

pytestmark = pytest.mark.django_db

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def security_headers(response) -> dict[str, str]:
    return {name: response.get(name) for name in SECURITY_HEADERS}


def test_an_api_answer_declares_its_length(api, user):
    response = api.post("/v1/billing/credits/check", user, format="json")

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(response.content))


def test_an_unknown_api_path_is_a_json_404_with_its_length_and_request_id(client):
    response = client.get("/v1/no/such/thing", HTTP_X_REQUEST_ID="edge-1")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert response["Content-Length"] == str(len(response.content))
    assert response["X-Request-ID"] == "edge-1"
    assert security_headers(response) == SECURITY_HEADERS


def test_a_body_over_the_limit_is_refused_before_it_is_read(api):
    response = api.generic(
        "POST", "/v1/billing/credits/check", "x", content_type="application/json", CONTENT_LENGTH=str(10**6)
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response["X-Request-ID"]
    assert response["Content-Length"] == str(len(response.content))
    assert security_headers(response) == SECURITY_HEADERS  # the edge's own answers too


def test_api_answers_and_pages_carry_the_security_headers(client, api, user):
    page = client.get("/admin/login/")
    answer = api.post("/v1/billing/credits/check", user, format="json")

    assert answer.status_code == 200
    assert security_headers(answer) == SECURITY_HEADERS
    assert security_headers(page) == SECURITY_HEADERS
    assert page["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in answer  # HSTS is off by default


@pytest.mark.parametrize("secure", [False, True])
def test_api_answers_carry_hsts_over_https_only(settings, api, user, secure):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True

    answer = api.post("/v1/billing/credits/check", user, format="json", secure=secure)

    assert answer.status_code == 200
    if secure:
        assert answer["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"
    else:
        assert "Strict-Transport-Security" not in answer


def test_api_calls_need_no_csrf_token_and_set_no_cookies(user):
    """API callers authenticate with keys, not sessions: CSRF does not apply to them."""
    strict = Client(enforce_csrf_checks=True, HTTP_X_API_KEY=create_api_key(permissions="read,write"))

    account = strict.post("/v1/billing/accounts", user, content_type="application/json")
    check = strict.post("/v1/billing/credits/check", user, content_type="application/json")
    charge = strict.post("/v1/billing/charges", charge_body(user, "csrf-1"), content_type="application/json")

    assert (account.status_code, check.status_code, charge.status_code) == (201, 200, 201)
    for response in (account, check, charge):
        assert not response.cookies
        assert "Cookie" not in response.get("Vary", "")


def test_stripe_can_post_webhooks_without_a_csrf_token():
    strict = Client(enforce_csrf_checks=True)

    response = strict.post(f"/stripe/webhook/{uuid.uuid4()}/", "{}", content_type="application/json")

    # Unsigned, for no endpoint of ours: the webhook view refuses it (a CSRF refusal is 403).
    assert response.status_code in (400, 404)


def test_an_admin_form_posted_without_its_csrf_token_is_refused():
    strict = Client(enforce_csrf_checks=True)

    response = strict.post("/admin/login/", {"username": "staff", "password": "x"})

    assert response.status_code == 403


def test_the_wsgi_application_is_djangos_with_the_same_chain():
    """What gunicorn serves (billing_site.wsgi) answers through settings.MIDDLEWARE."""
    from billing_site.wsgi import application

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/v1/no/such/thing",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "HTTP_X_REQUEST_ID": "wsgi-1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }
    answer: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    # As Django's test client does: the test's transaction holds the connection, which
    # close_old_connections (on request_started and request_finished) would close.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        body = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)

    assert type(application) is WSGIHandler
    assert answer["status"].startswith("404")
    assert json.loads(body) == {"detail": "Not found.", "code": "not_found"}
    headers = answer["headers"]
    assert (headers["X-Request-ID"], headers["Content-Length"]) == ("wsgi-1", str(len(body)))
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS

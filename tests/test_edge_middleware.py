"""The edge middleware: every API answer is complete JSON with its length and request id."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


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


def test_a_body_over_the_limit_is_refused_before_it_is_read(api, settings):
    response = api.generic(
        "POST", "/v1/billing/credits/check", "x", content_type="application/json", CONTENT_LENGTH=str(10**6)
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response["X-Request-ID"]


def test_pages_cannot_be_framed_and_api_answers_say_nosniff(client, api, user):
    page = client.get("/admin/login/")
    answer = api.post("/v1/billing/credits/check", user, format="json")

    assert page["X-Frame-Options"] == "DENY"
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert "X-Frame-Options" not in answer  # JSON is never a page in a frame

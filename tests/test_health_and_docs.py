"""GET /health, the OpenAPI schema and the docs pages (rendered from local assets)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from tests.factories import create_api_key

pytestmark = pytest.mark.django_db


def test_health_is_200_when_the_database_answers():
    response = Client().get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


@pytest.mark.django_db(transaction=True)
def test_health_and_the_api_are_503_with_retry_after_when_the_database_is_unreachable():
    key = create_api_key()
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1"})  # nothing listens on port 1
    try:
        response = Client().get("/health")
        api_response = Client().post(
            "/v1/billing/credits/check",
            {"oauth_provider": "p", "external_id": "x"},
            content_type="application/json",
            HTTP_X_API_KEY=key,
        )
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)

    assert response.status_code == 503
    assert response["Retry-After"]
    assert response.json()["status"] == "unhealthy"
    # The API too answers 503 while the database is away, never a 500.
    assert api_response.status_code == 503
    assert api_response["Retry-After"]
    assert api_response.json()["code"] == "service_unavailable"
    assert Client().get("/health").status_code == 200  # and recovers by itself


@pytest.mark.django_db(transaction=True)
def test_health_names_no_database_host_port_or_user_but_logs_them(caplog):
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1", "USER": "billing_owner"})
    try:
        with caplog.at_level("ERROR"):
            response = Client().get("/health")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "status": "unhealthy",
        "database": "down",
        "detail": "Database unavailable, retry shortly.",
        "code": "service_unavailable",
    }
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "port 1" in logged  # the operator's log has the detail


def test_the_schema_documents_every_endpoint_with_its_errors():
    schema = Client().get("/openapi.json").json()

    paths = schema["paths"]
    assert schema["openapi"].startswith("3.")
    for path in [
        "/v1/billing/credits/check",
        "/v1/billing/charges",
        "/v1/billing/accounts",
        "/v1/billing/accounts/{account_id}",
        "/v1/billing/accounts/{account_id}/transactions",
        "/v1/billing/credits",
    ]:
        assert path in paths, path
    charge = paths["/v1/billing/charges"]["post"]
    assert {"201", "401", "402", "403", "409", "422"} <= charge["responses"].keys()
    assert "examples" in charge["requestBody"]["content"]["application/json"]
    assert "ApiKeyAuth" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize("url", ["/docs", "/redoc"])
def test_the_docs_render_from_local_assets_only(url):
    response = Client().get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "https://" not in html and "http://" not in html.replace("http://testserver", "")


def test_the_docs_assets_are_served():
    html = Client().get("/docs").content.decode()
    asset = html.split('src="', 1)[1].split('"', 1)[0]

    assert Client().get(asset).status_code == 200


def test_the_schema_is_valid_openapi_and_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert "ApiKeyAuth" in (tmp_path / "schema.yaml").read_text()

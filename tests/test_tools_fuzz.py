"""Generated requests to /v1/tools/* with a real product behind them (the suite-wide fuzz
test has no products, so it stops at the 422): none may be a 500."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from tests.factories import create_api_key, tool_product

schema = schemathesis.openapi.from_wsgi("/openapi.json", get_wsgi_application()).include(path_regex="^/v1/tools/")


@pytest.fixture
def write_key(db: None) -> str:
    tool_product("web_search", free_initial=2, free_cap=2)
    return create_api_key(permissions="read,write")


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # As tests/test_fuzz.py: the WSGI app's request signals would close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@pytest.mark.django_db
def test_no_generated_tool_request_is_a_server_error(case, write_key):
    case.headers = {**(case.headers or {}), "X-API-Key": write_key}
    # Aim at the product that exists, so the generated identities and keys reach the service.
    if case.path_parameters and "product_type" in case.path_parameters:
        case.path_parameters["product_type"] = "web_search"
    if isinstance(case.body, dict) and "product_type" in case.body:
        case.body["product_type"] = "web_search"

    response = case.call()

    assert response.status_code < 500, (case.method, case.path, case.body, case.query, response.text[:300])
    assert "application/json" in response.headers.get("content-type", ""), response.status_code

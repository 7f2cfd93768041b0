"""Generated requests to /v1/tools/* with a real product behind them (the suite-wide fuzz
test has no products, so it stops at the 422): none may be a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.factories import create_api_key, tool_product
from tests.fuzzing import app_schema, keep_the_test_connection  # noqa: F401  (autouse fixture)

schema = app_schema().include(path_regex="^/v1/tools/")


@pytest.fixture
def write_key(db: None) -> str:
    tool_product("web_search", free_initial=2, free_cap=2)
    return create_api_key(permissions="read,write")


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

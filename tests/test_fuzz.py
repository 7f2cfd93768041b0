"""Property-based requests from our own OpenAPI schema (schemathesis): none may be a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests import app_store as app_store_fixtures
from tests.factories import create_api_key
from tests.fuzzing import app_schema, keep_the_test_connection  # noqa: F401  (autouse fixture)

schema = app_schema()
apple, app_store = app_store_fixtures.apple, app_store_fixtures.app_store


@pytest.fixture
def admin_key(db: None) -> str:
    return create_api_key(permissions="admin")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@pytest.mark.django_db
def test_no_generated_request_is_a_server_error(case, admin_key, localstripe, app_store):
    # localstripe and the Apple fake: purchases reach a (fake) Stripe and App Store; without
    # them they answer 503 by design.
    case.headers = {**(case.headers or {}), "X-API-Key": admin_key}

    response = case.call()

    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type")
    assert "application/json" in str(content_type), (case.method, case.path, response.status_code, content_type)

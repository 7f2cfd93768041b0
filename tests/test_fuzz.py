"""Property-based requests from our own OpenAPI schema (schemathesis): none may be a 500."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from tests.factories import create_api_key

schema = schemathesis.openapi.from_wsgi("/openapi.json", get_wsgi_application())


@pytest.fixture
def admin_key(db: None) -> str:
    return create_api_key(permissions="admin")


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # Requests here go through the WSGI app directly, whose request signals would close the
    # connection holding the test's transaction (Django's test Client disconnects them too).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@pytest.mark.django_db
def test_no_generated_request_is_a_server_error(case, admin_key, localstripe):
    # localstripe: purchases reach a (fake) Stripe; without one they answer 503 by design.
    case.headers = {**(case.headers or {}), "X-API-Key": admin_key}

    response = case.call()

    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type")
    assert "application/json" in str(content_type), (case.method, case.path, response.status_code, content_type)

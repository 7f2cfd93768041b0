"""What the schema fuzz tests share: the app's own OpenAPI schema, called through WSGI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections


def app_schema() -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_wsgi("/openapi.json", get_wsgi_application())


@pytest.fixture(autouse=True)
def keep_the_test_connection() -> Iterator[None]:
    # Requests here go through the WSGI app directly, whose request signals would close the
    # connection holding the test's transaction (Django's test Client disconnects them too).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)

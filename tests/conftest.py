from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest
from django.core.cache import cache
from django.core.servers.basehttp import ThreadedWSGIServer
from rest_framework.test import APIClient

from billing_site.ratelimit import reset_local_counters
from tests.factories import create_api_key
from tests.google_play import google_play_fake, play  # noqa: F401  (fixtures)
from tests.stripe_fake import localstripe_url, stripe_settings  # noqa: F401  (fixtures)

# pytest-django's live_server: loopback, on a port the OS picks when the server binds (a port
# chosen earlier, when this file loads, collides with another suite running at the same time).
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1:0")

# The live test server's listen backlog is 5 by default: 50 parallel requests would be
# refused at connect. Production runs gunicorn (backlog 2048); match it here.
ThreadedWSGIServer.request_queue_size = 128


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()
    reset_local_counters()


@pytest.fixture
def user() -> dict[str, str]:
    """A fresh end user, as the guide's test fixture makes one."""
    return {"oauth_provider": "oauth:google", "external_id": f"test-{uuid.uuid4()}@example.com"}


@pytest.fixture
def make_client(db: None) -> Callable[..., APIClient]:
    def make(permissions: str = "read,write", tenant_id: str = "", bearer: bool = False) -> APIClient:
        key = create_api_key(permissions=permissions, tenant_id=tenant_id)
        client = APIClient()
        if bearer:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        else:
            client.credentials(HTTP_X_API_KEY=key)
        return client

    return make


@pytest.fixture
def api(make_client: Callable[..., APIClient]) -> APIClient:
    """An agent's client with a read+write key."""
    return make_client()


@pytest.fixture
def admin_api(make_client: Callable[..., APIClient]) -> APIClient:
    return make_client(permissions="read,write,admin")


def charge_body(user: dict, key: str, amount: int = 100, **extra: object) -> dict:
    return {
        **user,
        "amount_minor": amount,
        "currency": "USD",
        "description": "Agent interaction - datum",
        "idempotency_key": key,
        "metadata": {},
        **extra,
    }


def run_command(name: str, *args: str) -> tuple[str, str]:
    """Run a manage.py command in-process; returns (stdout, stderr). CommandError propagates."""
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- Stripe: one localstripe process per session (tests/stripe_fake.py) ----------------


@pytest.fixture(scope="session")
def localstripe_server(localstripe_url: str):  # noqa: F811 (the fixture from tests.stripe_fake)
    """The session's localstripe (started by tests/stripe_fake.py), with a buyer's helpers."""
    from tests.localstripe import LocalStripe

    return LocalStripe(url=localstripe_url)


@pytest.fixture
def localstripe(localstripe_server, settings):
    """Point our Stripe client and dj-stripe's (the library's global api_base) at localstripe."""
    import stripe

    settings.STRIPE_API_HOST = localstripe_server.url
    previous = stripe.api_base
    stripe.api_base = localstripe_server.url
    yield localstripe_server
    stripe.api_base = previous


@pytest.fixture
def webhook_endpoint(db: None):
    """dj-stripe's endpoint row, made the way `manage.py setup_stripe_webhook` makes it."""
    from webhooks.services import webhook_endpoint_setup

    return webhook_endpoint_setup(base_url="http://testserver").endpoint

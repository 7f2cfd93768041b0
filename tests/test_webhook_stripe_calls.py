"""A webhook delivery calls Stripe only while no transaction is open (webhooks.stripe_sync).

dj-stripe fetches the event's object (and every related object it lacks) from Stripe; it did
so inside the delivery's transaction -- on SQLite, holding the one write lock, so every
charge meanwhile answered 503. Here every Stripe request of a delivery is watched: none may
go out while the delivery's connection is inside a transaction.
"""

from __future__ import annotations

import pytest
import stripe
from django.conf import settings
from django.db import connection

from ledger.models import EntryKind, LedgerEntry
from tests.localstripe import encode, make_event, sign

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stripe_requests(monkeypatch):
    """Every request the stripe library's global client sends: (method, url, inside a transaction?)."""
    seen: list[tuple[str, str, bool]] = []
    client = stripe.default_http_client
    real = client.request  # the HTTP exchange itself, under the library's retries

    def watched(method, url, *args, **kwargs):
        seen.append((method, url, connection.in_atomic_block))
        return real(method, url, *args, **kwargs)

    monkeypatch.setattr(client, "request", watched)
    return seen


@pytest.fixture
def paid_intent(api, localstripe, user):
    response = api.post("/v1/billing/purchases", user, format="json")
    assert response.status_code == 201, response.content
    payment_id = response.json()["payment_id"]
    localstripe.pay(payment_id)
    return localstripe.get(f"/v1/payment_intents/{payment_id}")


def _deliver(client, endpoint, event):
    body = encode(event)
    return client.post(
        f"/stripe/webhook/{endpoint.djstripe_uuid}/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret=settings.STRIPE_WEBHOOK_SECRET),
    )


def test_a_payment_delivery_fetches_from_stripe_with_no_transaction_open(
    client, webhook_endpoint, paid_intent, user, stripe_requests
):
    event = make_event("payment_intent.succeeded", paid_intent)

    response = _deliver(client, webhook_endpoint, event)

    assert response.status_code == 200, response.content
    assert LedgerEntry.objects.filter(account__external_id=user["external_id"], kind=EntryKind.PURCHASE).count() == 1
    urls = [url for _, url, _ in stripe_requests]
    assert any(paid_intent["id"] in url for url in urls), urls  # dj-stripe did fetch its copy...
    assert [url for _, url, inside in stripe_requests if inside] == []  # ...never inside a transaction


def test_each_object_is_fetched_once_per_delivery(client, webhook_endpoint, paid_intent, stripe_requests):
    _deliver(client, webhook_endpoint, make_event("payment_intent.succeeded", paid_intent))

    urls = [url for _, url, _ in stripe_requests]
    assert len(urls) == len(set(urls)), urls


def test_a_replayed_delivery_calls_stripe_not_at_all(client, webhook_endpoint, paid_intent, stripe_requests):
    event = make_event("payment_intent.succeeded", paid_intent)
    assert _deliver(client, webhook_endpoint, event).status_code == 200
    stripe_requests.clear()

    assert _deliver(client, webhook_endpoint, event).status_code == 200
    assert stripe_requests == []


def test_a_delivery_whose_stripe_fetch_fails_applies_nothing_and_asks_for_a_retry(
    client, webhook_endpoint, paid_intent, user, monkeypatch
):
    def down(*args, **kwargs):
        raise stripe.APIConnectionError("Stripe unreachable")

    monkeypatch.setattr(stripe.default_http_client, "request", down)

    response = _deliver(client, webhook_endpoint, make_event("payment_intent.succeeded", paid_intent))

    assert response.status_code == 500
    assert not LedgerEntry.objects.filter(account__external_id=user["external_id"], kind=EntryKind.PURCHASE).exists()

"""A webhook delivery calls Stripe only while no transaction is open.

The credit is made from the signed body, with no Stripe request; dj-stripe's copy of the
object is refreshed from Stripe after the commit (webhooks.mirror). A request sent inside a
transaction would hold it open while Stripe answers (on SQLite the one write lock, so
every charge meanwhile would answer 503). Here every Stripe request of a delivery is
watched: none may go out while the delivery's connection is inside a transaction.
"""

from __future__ import annotations

import pytest
import stripe
from django.conf import settings
from django.db import connection, transaction
from djstripe.models import Event, WebhookEventTrigger
from djstripe.models import PaymentIntent as StripePaymentIntent

from ledger.models import EntryKind, LedgerEntry
from purchases.stripe_api import StripeRequestInTransaction
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
    # With an email, so the intent names a Stripe Customer, and a card: objects dj-stripe lacks.
    response = api.post("/v1/billing/purchases", {**user, "customer_email": "buyer@example.com"}, format="json")
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


def _credits(user):
    return LedgerEntry.objects.filter(account__external_id=user["external_id"], kind=EntryKind.PURCHASE).count()


def test_a_payment_delivery_credits_then_refreshes_the_copy_with_no_transaction_open(
    client, webhook_endpoint, paid_intent, user, stripe_requests
):
    event = make_event("payment_intent.succeeded", paid_intent)

    response = _deliver(client, webhook_endpoint, event)

    assert response.status_code == 200, response.content
    assert _credits(user) == 1
    copy = StripePaymentIntent.objects.get(id=paid_intent["id"])  # dj-stripe's copy, refreshed
    assert copy.stripe_data["status"] == "succeeded"
    assert copy.customer is not None and copy.payment_method is not None, "the objects it names, stored first"
    urls = [url for _, url, _ in stripe_requests]
    assert any(paid_intent["id"] in url for url in urls), urls  # fetched for the copy...
    assert [url for _, url, inside in stripe_requests if inside] == []  # ...never inside a transaction
    trigger = WebhookEventTrigger.objects.get(event_id=event["id"])
    assert (trigger.processed, trigger.exception) == (True, "")


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


def test_a_rejected_delivery_calls_stripe_not_at_all(client, webhook_endpoint, paid_intent, user, stripe_requests):
    event = make_event("payment_intent.succeeded", {**paid_intent, "amount": paid_intent["amount"] + 1})

    assert _deliver(client, webhook_endpoint, event).status_code == 400
    assert stripe_requests == []
    assert _credits(user) == 0


def test_when_stripe_is_down_the_credit_stands_and_the_failed_refresh_is_recorded(
    client, webhook_endpoint, paid_intent, user, monkeypatch
):
    def down(*args, **kwargs):
        raise stripe.APIConnectionError("Stripe unreachable")

    monkeypatch.setattr(stripe.default_http_client, "request", down)
    event = make_event("payment_intent.succeeded", paid_intent)

    response = _deliver(client, webhook_endpoint, event)

    assert response.status_code == 200, "the credit needs nothing from Stripe"
    assert _credits(user) == 1
    assert Event.objects.filter(id=event["id"]).exists(), "stored from the signed body"
    assert not StripePaymentIntent.objects.filter(id=paid_intent["id"]).exists()
    trigger = WebhookEventTrigger.objects.get(event_id=event["id"])
    assert trigger.processed is True
    assert "not refreshed" in trigger.exception and "Stripe unreachable" in trigger.traceback

    monkeypatch.undo()
    again = make_event("payment_intent.succeeded", paid_intent)  # Stripe's next event about it
    assert _deliver(client, webhook_endpoint, again).status_code == 200
    assert _credits(user) == 1, "never a second credit"
    assert StripePaymentIntent.objects.filter(id=paid_intent["id"]).exists(), "the copy catches up"


def test_the_global_stripe_client_sends_nothing_inside_a_transaction(localstripe, stripe_requests):
    with transaction.atomic(), pytest.raises(StripeRequestInTransaction):
        stripe.Customer.retrieve("cus_any", api_key=settings.STRIPE_SECRET_KEY)

    assert stripe_requests == []

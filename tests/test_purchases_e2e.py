"""End to end over HTTP: our live server, a real localstripe, webhooks delivered by localstripe.

A buyer's whole path: the agent starts a purchase through our API, the browser pays on
(local) Stripe, Stripe signs and delivers `payment_intent.succeeded` to our webhook, and
the credit shows in the status endpoint, the ledger and the next credit check. Then the
delivered event is replayed concurrently, over real connections, and still credits once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.conf import settings
from djstripe.models import Event

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Purchase, PurchaseStatus
from tests.factories import create_api_key
from tests.localstripe import CARD_DECLINED, encode, make_event, sign
from webhooks.endpoint_setup import webhook_endpoint_setup

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WEBHOOK_NAME = "ciris-e2e"


@pytest.fixture
def stripe_webhook(live_server, localstripe):
    """Our endpoint (as `setup_stripe_webhook` makes it), registered at localstripe."""
    endpoint = webhook_endpoint_setup(base_url=live_server.url).endpoint
    localstripe.register_webhook(name=WEBHOOK_NAME, url=endpoint.url, secret=settings.STRIPE_WEBHOOK_SECRET)
    yield endpoint
    # Registrations outlive the test: point this one at a closed port so later payments
    # are not delivered to a server whose database is being flushed, then let a delivery
    # already under way finish (its transaction would block the flush).
    localstripe.register_webhook(name=WEBHOOK_NAME, url="http://127.0.0.1:9/", secret="whsec_unused")
    time.sleep(0.5)


@pytest.fixture
def http(live_server) -> Callable[..., requests.Response]:
    """The agent's HTTP client, with a read+write key."""
    headers = {"X-API-Key": create_api_key(permissions="read,write")}

    # A connection per request (no requests.Session): a kept-alive server thread would hold
    # its database connection past the test, and the test database could not be dropped.
    def call(method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.request(method, live_server.url + path, json=body, headers=headers, timeout=30)

    return call


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the webhook")


def charge(http, user, key):
    body = {**user, "amount_minor": 100, "currency": "USD", "idempotency_key": key}
    return http("POST", "/v1/billing/charges", body)


def test_a_user_who_used_the_free_tries_buys_a_pack_and_keeps_going(http, user, localstripe, stripe_webhook):
    for i in range(3):
        assert charge(http, user, f"free-{i}").status_code == 201
    check = http("POST", "/v1/billing/credits/check", user).json()
    assert (check["has_credit"], check["purchase_required"], check["purchase_price_minor"]) == (False, True, 500)

    created = http("POST", "/v1/billing/purchases", {**user, "customer_email": "buyer@example.com"})
    assert created.status_code == 201, created.text
    payment_id = created.json()["payment_id"]
    assert created.json()["status"] == "requires_payment_method"

    assert localstripe.pay(payment_id).status == "succeeded"
    status = wait_for(
        lambda: (r := http("GET", f"/v1/billing/purchases/{payment_id}/status").json())["succeeded"] and r
    )

    assert status["status"] == "succeeded"
    assert status["credits_added"] == 20
    assert status["balance_after"] == 20
    check = http("POST", "/v1/billing/credits/check", user).json()
    assert (check["has_credit"], check["plan_name"], check["credits_remaining"]) == (True, "pro", 20)
    [delivered] = [
        e for e in localstripe.events(type="payment_intent.succeeded") if e["data"]["object"]["id"] == payment_id
    ]
    [entry] = LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, purchase__stripe_payment_intent_id=payment_id)
    assert entry.actor == f"stripe:{delivered['id']}"
    assert entry.balance_delta_minor == 2000

    paid = charge(http, user, "paid-1")
    assert paid.status_code == 201
    assert paid.json()["balance_after"] == 1900


def test_a_declined_card_credits_nothing_and_the_status_says_failed(http, user, localstripe, stripe_webhook):
    payment_id = http("POST", "/v1/billing/purchases", user).json()["payment_id"]

    with pytest.raises(Exception):  # noqa: B017 (the decline reaches the browser as a card error)
        localstripe.pay(payment_id, card=CARD_DECLINED)
    status = wait_for(
        lambda: (r := http("GET", f"/v1/billing/purchases/{payment_id}").json())["status"] == "failed" and r
    )

    assert status["succeeded"] is False
    assert status["credits_added"] == 0
    assert status["balance_after"] is None
    assert Account.objects.get(external_id=user["external_id"]).balance_minor == 0


def post_concurrently(url: str, bodies: list[bytes]) -> list[int]:
    """Post each body from its own thread (own connection), all released at once."""
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = [0] * len(bodies)

    def deliver(i: int, body: bytes) -> None:
        signature = sign(body, secret=settings.STRIPE_WEBHOOK_SECRET)
        barrier.wait()
        headers = {"Content-Type": "application/json", "Stripe-Signature": signature}
        response = requests.post(url, data=body, headers=headers, timeout=60)
        statuses[i] = response.status_code

    threads = [threading.Thread(target=deliver, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


@pytest.mark.concurrency
def test_a_delivered_event_replayed_ten_times_concurrently_credits_once(http, user, localstripe, stripe_webhook):
    payment_id = http("POST", "/v1/billing/purchases", user).json()["payment_id"]
    localstripe.pay(payment_id)
    wait_for(lambda: Purchase.objects.filter(stripe_payment_intent_id=payment_id, credited_at__isnull=False).exists())
    [delivered] = [
        e for e in localstripe.events(type="payment_intent.succeeded") if e["data"]["object"]["id"] == payment_id
    ]

    statuses = post_concurrently(stripe_webhook.url, [encode(delivered)] * 10)

    assert statuses == [200] * 10
    assert (
        LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, purchase__stripe_payment_intent_id=payment_id).count() == 1
    )
    assert Account.objects.get(external_id=user["external_id"]).balance_minor == 2000


@pytest.mark.concurrency
def test_one_new_event_delivered_ten_times_and_another_for_the_same_intent_credit_once(
    http, user, localstripe, stripe_webhook
):
    # No webhook registered at localstripe while paying: these deliveries are the first.
    localstripe.register_webhook(name=WEBHOOK_NAME, url="http://127.0.0.1:9/", secret="whsec_unused")
    payment_id = http("POST", "/v1/billing/purchases", user).json()["payment_id"]
    localstripe.pay(payment_id)
    intent = localstripe.get(f"/v1/payment_intents/{payment_id}")
    event = make_event("payment_intent.succeeded", intent)
    other = make_event("payment_intent.succeeded", intent)

    statuses = post_concurrently(stripe_webhook.url, [encode(event)] * 10 + [encode(other)] * 2)

    assert statuses == [200] * 12
    entries = LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, purchase__stripe_payment_intent_id=payment_id)
    assert entries.count() == 1
    assert Account.objects.get(external_id=user["external_id"]).balance_minor == 2000
    assert Purchase.objects.get(stripe_payment_intent_id=payment_id).status == PurchaseStatus.SUCCEEDED


@pytest.mark.concurrency
def test_concurrent_retries_of_one_purchase_make_one_purchase(live_server, user, localstripe):
    key = create_api_key(permissions="read,write")
    barrier = threading.Barrier(8)
    answers: list[requests.Response] = []

    def buy() -> None:
        barrier.wait()
        answers.append(
            requests.post(
                f"{live_server.url}/v1/billing/purchases",
                json={**user, "idempotency_key": "checkout-1"},
                headers={"X-API-Key": key},
                timeout=60,
            )
        )

    threads = [threading.Thread(target=buy) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    purchase = Purchase.objects.get(account__external_id=user["external_id"])
    assert {r.json()["payment_id"] for r in answers} == {purchase.stripe_payment_intent_id}


@pytest.mark.concurrency
def test_distinct_new_events_for_one_intent_delivered_concurrently_credit_once(http, user, localstripe, stripe_webhook):
    # Not a replay of a stored event (answered without reaching the credit): eight
    # distinct event ids, each one new, so each reaches the credit and its locks.
    localstripe.register_webhook(name=WEBHOOK_NAME, url="http://127.0.0.1:9/", secret="whsec_unused")
    payment_id = http("POST", "/v1/billing/purchases", user).json()["payment_id"]
    localstripe.pay(payment_id)
    intent = localstripe.get(f"/v1/payment_intents/{payment_id}")
    events = [make_event("payment_intent.succeeded", intent) for _ in range(8)]

    statuses = post_concurrently(stripe_webhook.url, [encode(e) for e in events])

    assert statuses == [200] * 8
    assert Event.objects.filter(id__in=[e["id"] for e in events]).count() == 8, "every event was processed"
    [entry] = LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, purchase__stripe_payment_intent_id=payment_id)
    assert entry.actor in {f"stripe:{e['id']}" for e in events}
    assert Account.objects.get(external_id=user["external_id"]).balance_minor == 2000


@pytest.mark.concurrency
def test_a_succeeded_event_and_its_refund_arriving_concurrently_end_refunded(http, user, localstripe, stripe_webhook):
    localstripe.register_webhook(name=WEBHOOK_NAME, url="http://127.0.0.1:9/", secret="whsec_unused")
    payment_id = http("POST", "/v1/billing/purchases", user).json()["payment_id"]
    localstripe.pay(payment_id)
    intent = localstripe.get(f"/v1/payment_intents/{payment_id}")
    localstripe.client.v1.refunds.create(params={"payment_intent": payment_id})
    latest = localstripe.get(f"/v1/payment_intents/{payment_id}")["latest_charge"]
    charge = localstripe.get(f"/v1/charges/{latest['id'] if isinstance(latest, dict) else latest}")
    succeeded = [encode(make_event("payment_intent.succeeded", intent)) for _ in range(3)]
    refunded = [encode(make_event("charge.refunded", charge)) for _ in range(3)]

    statuses = post_concurrently(
        stripe_webhook.url, [b for pair in zip(succeeded, refunded, strict=True) for b in pair]
    )

    assert statuses[0::2] == [200] * 3
    assert set(statuses[1::2]) <= {200, 409}, "a refund before its credit asks Stripe to retry"
    # Stripe delivers a refused refund again: once the credit is in, it applies.
    retried = [refunded[i] for i, status in enumerate(statuses[1::2]) if status == 409]
    assert post_concurrently(stripe_webhook.url, retried) == [200] * len(retried)
    account = Account.objects.get(external_id=user["external_id"])
    assert account.balance_minor == 0
    assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, account=account).count() == 1
    [refund] = LedgerEntry.objects.filter(kind=EntryKind.REFUND, account=account)
    assert refund.balance_delta_minor == -2000
    purchase = Purchase.objects.get(stripe_payment_intent_id=payment_id)
    assert (purchase.status, purchase.refunded_minor) == (PurchaseStatus.REFUNDED, 500)
    assert sum(e.balance_delta_minor for e in LedgerEntry.objects.filter(account=account)) == 0

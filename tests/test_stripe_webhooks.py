"""POST /stripe/webhook/<uuid>/: signed Stripe events credit purchases exactly once.

Payments are made on localstripe; the events are built from its objects and signed here
the way Stripe signs them (localstripe cannot send charge.refunded, and these tests need
to forge, replay and tamper with deliveries).
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.conf import settings
from djstripe.models import Event, WebhookEventTrigger

from accounts.identity import Identity
from accounts.models import Account
from charges.services import charge_create
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Purchase, PurchaseStatus
from tests.conftest import charge_body
from tests.localstripe import CARD_DECLINED, encode, make_event, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliver(client, webhook_endpoint):
    """Post an event to our webhook as Stripe would (signed with the endpoint's secret)."""

    def post(event, *, secret=None, timestamp=None, body=None, signature=None, **headers):
        payload = body if body is not None else encode(event)
        signature = signature or sign(payload, secret=secret or settings.STRIPE_WEBHOOK_SECRET, timestamp=timestamp)
        return client.post(
            f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/",
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature,
            **headers,
        )

    return post


@pytest.fixture
def buy(api, localstripe):
    """Start a purchase through our API; returns its PaymentIntent id."""

    def purchase(user, **extra):
        response = api.post("/v1/billing/purchases", {**user, **extra}, format="json")
        assert response.status_code == 201, response.content
        return response.json()["payment_id"]

    return purchase


@pytest.fixture
def paid(buy, localstripe):
    """A purchase paid on localstripe; returns the succeeded PaymentIntent as Stripe sends it."""

    def pay(user, **extra):
        payment_id = buy(user, **extra)
        localstripe.pay(payment_id)
        intent = localstripe.get(f"/v1/payment_intents/{payment_id}")
        assert intent["status"] == "succeeded"
        return intent

    return pay


def account_of(user) -> Account:
    return Account.objects.get(external_id=user["external_id"])


def purchase_credits(user) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(account__external_id=user["external_id"], kind=EntryKind.PURCHASE))


def test_payment_intent_succeeded_credits_the_pack(deliver, paid, user):
    intent = paid(user)
    event = make_event("payment_intent.succeeded", intent)

    response = deliver(event)

    assert response.status_code == 200, response.content
    account = account_of(user)
    assert account.balance_minor == 2000
    assert account.plan_name == "pro"
    [entry] = purchase_credits(user)
    purchase = Purchase.objects.get(stripe_payment_intent_id=intent["id"])
    assert entry.balance_delta_minor == 2000
    assert entry.balance_after_minor == 2000
    assert entry.purchase_id == purchase.pk
    assert entry.actor == f"stripe:{event['id']}"
    assert entry.details["stripe_event"] == event["id"]
    assert entry.details["payment_intent"] == intent["id"]
    assert purchase.status == PurchaseStatus.SUCCEEDED
    assert purchase.credited_at is not None
    assert Event.objects.filter(id=event["id"]).exists(), "dj-stripe stores the event"


def test_the_status_endpoint_and_credit_check_show_the_purchase(api, deliver, paid, user):
    intent = paid(user)
    deliver(make_event("payment_intent.succeeded", intent))

    status = api.get(f"/v1/billing/purchases/{intent['id']}/status").json()
    check = api.post("/v1/billing/credits/check", user, format="json").json()

    assert status["status"] == "succeeded"
    assert status["succeeded"] is True
    assert status["credits_added"] == 20
    assert status["balance_after"] == 20
    assert check["has_credit"] is True
    assert check["plan_name"] == "pro"
    assert check["credits_remaining"] == 20


def test_after_the_free_uses_charges_draw_from_the_paid_balance(api, deliver, paid, user):
    for i in range(3):
        assert api.post("/v1/billing/charges", charge_body(user, f"free-{i}"), format="json").status_code == 201
    assert api.post("/v1/billing/charges", charge_body(user, "no-credit"), format="json").status_code == 402
    deliver(make_event("payment_intent.succeeded", paid(user)))

    response = api.post("/v1/billing/charges", charge_body(user, "paid-1"), format="json")

    assert response.status_code == 201
    assert response.json()["balance_after"] == 1900
    assert response.json()["paid_with_free_use"] is False


def test_the_same_event_ten_times_in_sequence_credits_once(deliver, paid, user):
    event = make_event("payment_intent.succeeded", paid(user))

    statuses = [deliver(event).status_code for _ in range(10)]

    assert statuses == [200] * 10
    assert len(purchase_credits(user)) == 1
    assert account_of(user).balance_minor == 2000
    assert WebhookEventTrigger.objects.filter(body__contains=event["id"]).count() == 10, "every delivery is stored"


def test_two_different_events_for_one_payment_intent_credit_once(deliver, paid, user):
    intent = paid(user)

    first = deliver(make_event("payment_intent.succeeded", intent))
    second = deliver(make_event("payment_intent.succeeded", intent))

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(purchase_credits(user)) == 1
    assert account_of(user).balance_minor == 2000


def test_two_purchases_credit_twice(deliver, paid, user):
    deliver(make_event("payment_intent.succeeded", paid(user)))
    deliver(make_event("payment_intent.succeeded", paid(user)))

    assert account_of(user).balance_minor == 4000
    assert len(purchase_credits(user)) == 2


# --- Bad input: 400 and nothing credited ------------------------------------------------


def assert_nothing_credited(user):
    assert purchase_credits(user) == []
    assert account_of(user).balance_minor == 0


def test_a_forged_signature_is_400(deliver, paid, user):
    response = deliver(make_event("payment_intent.succeeded", paid(user)), secret="whsec_attacker")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert_nothing_credited(user)
    assert WebhookEventTrigger.objects.get().valid is False, "the forged delivery is stored, marked invalid"


def test_a_missing_signature_is_400(client, webhook_endpoint, paid, user):
    event = make_event("payment_intent.succeeded", paid(user))

    response = client.post(
        f"/stripe/webhook/{webhook_endpoint.djstripe_uuid}/", encode(event), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert_nothing_credited(user)


def test_a_stale_timestamp_is_400(deliver, paid, user):
    response = deliver(make_event("payment_intent.succeeded", paid(user)), timestamp=int(time.time()) - 3600)

    assert response.status_code == 400
    assert_nothing_credited(user)


def test_a_tampered_body_is_400(deliver, paid, user):
    event = make_event("payment_intent.succeeded", paid(user))
    signature = sign(encode(event), secret=settings.STRIPE_WEBHOOK_SECRET)
    event["data"]["object"]["amount"] = 1

    response = deliver(event, signature=signature)

    assert response.status_code == 400
    assert_nothing_credited(user)


def test_the_debug_secret_header_is_refused(deliver, paid, user, settings):
    settings.DEBUG = True
    event = make_event("payment_intent.succeeded", paid(user))

    response = deliver(event, secret="whsec_attacker", HTTP_X_DJSTRIPE_WEBHOOK_SECRET="whsec_attacker")

    assert response.status_code == 400
    assert_nothing_credited(user)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b"42", b'"a string"', b"{}", b'{"id": "evt_1"}', b'{"id": 5, "type": "x"}', b"\xff\xfe"],
    ids=["not json", "a list", "a number", "a string", "empty", "no type", "id not a string", "not utf-8"],
)
def test_a_malformed_body_is_400(deliver, body):
    response = deliver(None, body=body)

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_event"
    assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()


def test_a_signed_event_without_an_object_is_400(deliver):
    event = make_event("payment_intent.succeeded", {})
    event["data"] = {"object": "pi_123"}

    assert deliver(event).status_code == 400


def test_an_unknown_webhook_endpoint_is_404(client):
    body = encode(make_event("payment_intent.succeeded", {}))

    response = client.post(
        "/stripe/webhook/00000000-0000-0000-0000-000000000000/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret=settings.STRIPE_WEBHOOK_SECRET),
    )

    assert response.status_code == 404


def test_an_unknown_payment_intent_naming_our_purchase_is_400_and_logged_as_an_error(deliver, paid, user, caplog):
    intent = {**paid(user), "id": "pi_notours000000"}  # the metadata still names our purchase

    with caplog.at_level(logging.ERROR):
        response = deliver(make_event("payment_intent.succeeded", intent))

    assert response.status_code == 400
    assert response.json()["code"] == "event_rejected"
    assert "unknown payment intent" in caplog.text
    assert_nothing_credited(user)


@pytest.mark.parametrize(
    "change",
    [{"amount": 1}, {"amount": 50000}, {"currency": "eur"}, {"currency": None}, {"amount_received": 1}],
    ids=["less", "more", "other currency", "no currency", "received less"],
)
def test_an_amount_or_currency_mismatch_is_400_and_logged(deliver, paid, user, caplog, change):
    intent = {**paid(user), **change}

    with caplog.at_level(logging.ERROR):
        response = deliver(make_event("payment_intent.succeeded", intent))

    assert response.status_code == 400
    assert "amount or currency differs" in caplog.text
    assert_nothing_credited(user)
    assert Purchase.objects.get(stripe_payment_intent_id=intent["id"]).status != PurchaseStatus.SUCCEEDED


def test_an_event_for_another_accounts_purchase_is_400(deliver, paid, buy, user, caplog):
    victim = {**user, "external_id": "victim-" + user["external_id"]}
    victim_purchase = Purchase.objects.get(stripe_payment_intent_id=buy(victim))
    intent = paid(user)
    # The intent paid by `user`, relabelled as the victim's purchase.
    intent["metadata"] = {"purchase_id": str(victim_purchase.pk), "account_id": str(victim_purchase.account_id)}

    with caplog.at_level(logging.ERROR):
        response = deliver(make_event("payment_intent.succeeded", intent))

    assert response.status_code == 400
    assert "another purchase or account" in caplog.text
    assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()


def test_an_intent_without_our_metadata_is_400(deliver, paid, user):
    intent = {**paid(user), "metadata": {}}

    assert deliver(make_event("payment_intent.succeeded", intent)).status_code == 400
    assert_nothing_credited(user)


def test_a_succeeded_event_whose_intent_is_not_succeeded_is_400(deliver, buy, localstripe, user):
    intent = localstripe.get(f"/v1/payment_intents/{buy(user)}")

    assert deliver(make_event("payment_intent.succeeded", intent)).status_code == 400
    assert_nothing_credited(user)


def test_a_rejected_event_is_stored_with_the_reason(deliver, paid, user):
    deliver(make_event("payment_intent.succeeded", {**paid(user), "amount": 1}))

    trigger = WebhookEventTrigger.objects.get()
    assert trigger.valid is True
    assert trigger.processed is False
    assert "amount or currency differs" in trigger.exception


# --- Failures roll back and ask Stripe to retry -------------------------------------------


def test_a_failure_while_crediting_rolls_back_and_answers_500_then_the_retry_credits(deliver, paid, user, monkeypatch):
    event = make_event("payment_intent.succeeded", paid(user))

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("purchases.services.ledger_post", broken)
    response = deliver(event)

    assert response.status_code == 500
    assert response.json()["code"] == "webhook_failed"
    assert_nothing_credited(user)
    assert Purchase.objects.get(stripe_payment_intent_id=event["data"]["object"]["id"]).credited_at is None
    assert not Event.objects.filter(id=event["id"]).exists(), "rolled back, so Stripe's retry is processed"
    assert "disk full" in WebhookEventTrigger.objects.get().exception

    monkeypatch.undo()
    retry = deliver(event)

    assert retry.status_code == 200
    assert account_of(user).balance_minor == 2000


def test_a_failure_after_the_ledger_entry_rolls_the_entry_back_too(deliver, paid, user, monkeypatch):
    event = make_event("payment_intent.succeeded", paid(user))

    def broken_save(self, *args, **kwargs):
        raise RuntimeError("lost connection")

    monkeypatch.setattr(Purchase, "save", broken_save)
    response = deliver(event)

    assert response.status_code == 500
    assert_nothing_credited(user)


# --- Failed and canceled payments ---------------------------------------------------------


def test_a_declined_payment_marks_the_purchase_failed(deliver, buy, localstripe, user):
    payment_id = buy(user)
    with pytest.raises(Exception):  # noqa: B017 (localstripe answers the decline as a card error)
        localstripe.pay(payment_id, card=CARD_DECLINED)
    [failed] = [
        e for e in localstripe.events(type="payment_intent.payment_failed") if e["data"]["object"]["id"] == payment_id
    ]

    response = deliver(make_event("payment_intent.payment_failed", failed["data"]["object"]))

    assert response.status_code == 200
    assert Purchase.objects.get(stripe_payment_intent_id=payment_id).status == PurchaseStatus.FAILED
    assert_nothing_credited(user)


def test_a_canceled_payment_marks_the_purchase_canceled(deliver, buy, localstripe, user):
    payment_id = buy(user)
    intent = localstripe.client.v1.payment_intents.cancel(payment_id).to_dict()

    response = deliver(make_event("payment_intent.canceled", intent))

    assert response.status_code == 200
    assert Purchase.objects.get(stripe_payment_intent_id=payment_id).status == PurchaseStatus.CANCELED


def test_a_late_failure_never_undoes_a_success(deliver, paid, user):
    intent = paid(user)
    deliver(make_event("payment_intent.succeeded", intent))

    response = deliver(make_event("payment_intent.payment_failed", {**intent, "status": "requires_payment_method"}))

    assert response.status_code == 200
    assert Purchase.objects.get(stripe_payment_intent_id=intent["id"]).status == PurchaseStatus.SUCCEEDED
    assert account_of(user).balance_minor == 2000


def test_a_failure_event_for_an_unknown_intent_naming_our_purchase_is_400(deliver, paid, user):
    intent = {**paid(user), "id": "pi_notours000000"}

    assert deliver(make_event("payment_intent.payment_failed", intent)).status_code == 400


def test_events_we_do_not_handle_are_stored_and_answered_200(deliver, localstripe):
    customer = localstripe.client.v1.customers.create(params={"email": "x@example.com"}).to_dict()
    event = make_event("customer.created", customer)

    assert deliver(event).status_code == 200
    assert Event.objects.filter(id=event["id"]).exists()


# --- Refunds ------------------------------------------------------------------------------


@pytest.fixture
def credited(deliver, paid):
    """A purchase paid and credited; returns its PaymentIntent id."""

    def make(user):
        intent = paid(user)
        assert deliver(make_event("payment_intent.succeeded", intent)).status_code == 200
        return intent["id"]

    return make


@pytest.fixture
def refund(localstripe):
    """Refund on localstripe; returns the charge as charge.refunded carries it."""

    def make(payment_id, amount=None):
        params = {"payment_intent": payment_id}
        if amount is not None:
            params["amount"] = amount
        localstripe.client.v1.refunds.create(params=params)
        latest = localstripe.get(f"/v1/payment_intents/{payment_id}")["latest_charge"]
        charge_id = latest["id"] if isinstance(latest, dict) else latest
        return localstripe.get(f"/v1/charges/{charge_id}")

    return make


REVERSAL_KINDS = (EntryKind.REFUND, EntryKind.REFUND_REVERSAL, EntryKind.CHARGEBACK, EntryKind.CHARGEBACK_REVERSAL)


def refunds_of(user) -> list[LedgerEntry]:
    """The user's refund and chargeback entries (taken back and given back), oldest first."""
    return list(
        LedgerEntry.objects.filter(account__external_id=user["external_id"], kind__in=REVERSAL_KINDS).order_by("id")
    )


def test_a_full_refund_takes_the_uses_back(deliver, credited, refund, user):
    payment_id = credited(user)
    event = make_event("charge.refunded", refund(payment_id))

    response = deliver(event)

    assert response.status_code == 200, response.content
    assert account_of(user).balance_minor == 0
    [entry] = refunds_of(user)
    assert entry.balance_delta_minor == -2000
    assert entry.actor == f"stripe:{event['id']}"
    assert entry.details["shortfall_minor"] == 0
    purchase = Purchase.objects.get(stripe_payment_intent_id=payment_id)
    assert purchase.status == PurchaseStatus.REFUNDED
    assert purchase.refunded_minor == 500


def test_partial_refunds_take_back_their_share_each_once(deliver, credited, refund, user):
    payment_id = credited(user)
    first = make_event("charge.refunded", refund(payment_id, amount=125))
    second = make_event("charge.refunded", refund(payment_id, amount=125))

    for event in (first, first, second, second, first):
        assert deliver(event).status_code == 200

    assert [e.balance_delta_minor for e in refunds_of(user)] == [-500, -500]
    assert account_of(user).balance_minor == 1000
    purchase = Purchase.objects.get(stripe_payment_intent_id=payment_id)
    assert (purchase.status, purchase.refunded_minor) == (PurchaseStatus.PARTIALLY_REFUNDED, 250)


def test_a_second_event_for_the_same_refund_takes_nothing(deliver, credited, refund, user):
    charge = refund(credited(user), amount=250)

    deliver(make_event("charge.refunded", charge))
    deliver(make_event("charge.refunded", charge))

    assert len(refunds_of(user)) == 1
    assert account_of(user).balance_minor == 1000


def test_a_refund_of_spent_credit_stops_at_zero_and_records_the_shortfall(api, deliver, credited, refund, user):
    payment_id = credited(user)
    for i in range(3 + 15):  # three free uses, then 15 paid uses: 500 of 2000 left
        assert api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json").status_code == 201
    assert account_of(user).balance_minor == 500

    assert deliver(make_event("charge.refunded", refund(payment_id))).status_code == 200

    assert account_of(user).balance_minor == 0
    [entry] = refunds_of(user)
    assert entry.balance_delta_minor == -500
    assert entry.details["credit_reversed_minor"] == 2000
    assert entry.details["shortfall_minor"] == 1500


def test_a_refund_before_the_credit_asks_stripe_to_retry(deliver, paid, refund, user):
    payment_id = paid(user)["id"]

    response = deliver(make_event("charge.refunded", refund(payment_id)))

    assert response.status_code == 409
    assert refunds_of(user) == []
    assert Purchase.objects.get(stripe_payment_intent_id=payment_id).refunded_minor == 0


def test_a_refund_naming_our_purchase_with_an_unknown_payment_intent_is_400(deliver, credited, refund, user):
    payment_id = credited(user)
    purchase = Purchase.objects.get(stripe_payment_intent_id=payment_id)
    charge = {**refund(payment_id), "payment_intent": "pi_notours000000", "metadata": {"purchase_id": str(purchase.pk)}}

    assert deliver(make_event("charge.refunded", charge)).status_code == 400
    assert refunds_of(user) == []


@pytest.mark.parametrize(
    "change", [{"amount_refunded": 501}, {"amount_refunded": -1}, {"amount_refunded": "500"}, {"amount": 400}]
)
def test_a_refund_with_impossible_amounts_is_400(deliver, credited, refund, user, change):
    charge = {**refund(credited(user)), **change}

    assert deliver(make_event("charge.refunded", charge)).status_code == 400
    assert account_of(user).balance_minor == 2000


def test_the_ledger_still_sums_to_the_balance(api, deliver, credited, refund, user):
    payment_id = credited(user)
    api.post("/v1/billing/charges", charge_body(user, "k"), format="json")
    deliver(make_event("charge.refunded", refund(payment_id, amount=100)))

    account = account_of(user)
    entries = LedgerEntry.objects.filter(account=account)
    assert sum(e.balance_delta_minor for e in entries) == account.balance_minor
    assert sum(e.free_uses_delta for e in entries) == account.free_uses_remaining
    assert json.loads(json.dumps([e.details for e in entries]))  # details are plain JSON


def test_reconcile_finds_nothing_wrong_after_purchases_charges_and_refunds(api, deliver, credited, refund, user):
    from backoffice.reconcile import reconcile

    first = credited(user)
    credited(user)
    for i in range(5):
        api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json")
    assert deliver(make_event("charge.refunded", refund(first, amount=100))).status_code == 200
    assert deliver(make_event("charge.refunded", refund(first, amount=400))).status_code == 200

    assert account_of(user).balance_minor == 2000 - 5 * 100 + 3 * 100  # 3 of the 5 charges used free uses
    assert reconcile() == []


def test_purchases_and_webhook_deliveries_are_counted_once_committed(
    deliver, paid, user, django_capture_on_commit_callbacks
):
    from prometheus_client import REGISTRY

    def count(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        count("billing_purchases_total", outcome="created"),
        count("billing_purchases_total", outcome="succeeded"),
        count("billing_webhook_events_total", type="payment_intent.succeeded", outcome="processed"),
        count("billing_webhook_events_total", type="other", outcome="rejected"),
        count("billing_credits_granted_minor_total", kind="purchase"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        intent = paid(user)
        assert deliver(make_event("payment_intent.succeeded", intent)).status_code == 200
        forged = make_event("invoice.paid", intent)
        assert deliver(forged, signature="t=1,v1=forged").status_code == 400

    after = (
        count("billing_purchases_total", outcome="created"),
        count("billing_purchases_total", outcome="succeeded"),
        count("billing_webhook_events_total", type="payment_intent.succeeded", outcome="processed"),
        count("billing_webhook_events_total", type="other", outcome="rejected"),
        count("billing_credits_granted_minor_total", kind="purchase"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1, 2000]


def test_a_failure_while_crediting_that_is_not_the_one_credit_constraint_is_500(deliver, paid, user, monkeypatch):
    from django.db import IntegrityError

    event = make_event("payment_intent.succeeded", paid(user))

    def broken(**kwargs):
        raise IntegrityError('duplicate key value violates unique constraint "ledger_unique_account_idempotency_key"')

    monkeypatch.setattr("purchases.services.ledger_post", broken)
    response = deliver(event)

    assert response.status_code == 500, "never a 200 with nothing credited"
    assert_nothing_credited(user)
    assert not Event.objects.filter(id=event["id"]).exists()


# --- Payments that are not ours (the Stripe account takes other payments too) --------------


@pytest.fixture
def foreign_intent(localstripe):
    """A payment on the same Stripe account made by someone else: no metadata of ours."""

    def make(*, pay=True):
        intent = localstripe.client.v1.payment_intents.create(
            params={"amount": 1234, "currency": "usd", "payment_method_types": ["card"], "metadata": {"order": "42"}}
        )
        if pay:
            localstripe.pay(intent.id)
        return localstripe.get(f"/v1/payment_intents/{intent.id}")

    return make


def foreign_charge(localstripe, intent):
    localstripe.client.v1.refunds.create(params={"payment_intent": intent["id"]})
    latest = localstripe.get(f"/v1/payment_intents/{intent['id']}")["latest_charge"]
    return localstripe.get(f"/v1/charges/{latest['id'] if isinstance(latest, dict) else latest}")


@pytest.mark.parametrize("event_type", ["payment_intent.succeeded", "payment_intent.payment_failed"])
def test_an_intent_that_is_not_ours_is_200_stored_logged_and_ignored(deliver, foreign_intent, user, caplog, event_type):
    event = make_event(event_type, foreign_intent())

    with caplog.at_level(logging.ERROR):
        response = deliver(event)

    assert response.status_code == 200, response.content
    assert "not ours, ignored" in caplog.text
    assert Event.objects.filter(id=event["id"]).exists(), "dj-stripe stores it"
    assert not LedgerEntry.objects.exists()
    assert not Purchase.objects.exists()


def test_a_canceled_intent_that_is_not_ours_is_200(deliver, foreign_intent, localstripe):
    intent = foreign_intent(pay=False)
    canceled = localstripe.client.v1.payment_intents.cancel(intent["id"]).to_dict()

    assert deliver(make_event("payment_intent.canceled", canceled)).status_code == 200


def test_a_refund_that_is_not_ours_is_200_and_takes_nothing(
    deliver, credited, foreign_intent, localstripe, user, caplog
):
    credited(user)
    charge = foreign_charge(localstripe, foreign_intent())

    with caplog.at_level(logging.ERROR):
        response = deliver(make_event("charge.refunded", charge))

    assert response.status_code == 200, response.content
    assert "not ours, ignored" in caplog.text
    assert refunds_of(user) == []
    assert account_of(user).balance_minor == 2000


def test_metadata_naming_no_purchase_of_ours_is_not_ours(deliver, foreign_intent, localstripe):
    intent = {**foreign_intent(), "metadata": {"purchase_id": "00000000-0000-0000-0000-000000000000"}}

    assert deliver(make_event("payment_intent.succeeded", intent)).status_code == 200
    assert not LedgerEntry.objects.exists()


# --- X-Forwarded-For ------------------------------------------------------------------------


@pytest.mark.parametrize("forwarded", ["not-an-ip, 1.2.3.4", "", " , 1.2.3.4", "fe80::1%eth0", "1.2.3.999"])
def test_an_unusable_forwarded_for_is_dropped_not_a_500(deliver, forwarded):
    event = make_event("payment_intent.succeeded", {"id": "pi_x"})

    response = deliver(event, signature="t=1,v1=forged", HTTP_X_FORWARDED_FOR=forwarded)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert WebhookEventTrigger.objects.get().remote_ip == "127.0.0.1", "REMOTE_ADDR instead"


@pytest.mark.parametrize(
    "forwarded,stored",
    [("1.2.3.4, 10.0.0.1", "1.2.3.4"), ("1.2.3.4:8080", "1.2.3.4"), ("[2001:db8::1]:443", "2001:db8::1")],
)
def test_a_usable_forwarded_for_is_kept(deliver, forwarded, stored):
    deliver(
        make_event("payment_intent.succeeded", {"id": "pi_x"}), signature="t=1,v1=x", HTTP_X_FORWARDED_FOR=forwarded
    )

    assert WebhookEventTrigger.objects.get().remote_ip == stored


# --- Refunds in the status endpoint, failed refunds, chargebacks -----------------------------


def test_the_status_after_a_full_refund_shows_it(api, deliver, credited, refund, user):
    payment_id = credited(user)
    deliver(make_event("charge.refunded", refund(payment_id)))

    status = api.get(f"/v1/billing/purchases/{payment_id}/status").json()

    assert status["status"] == "refunded"
    assert status["succeeded"] is False
    assert (status["credits_added"], status["credits_refunded"], status["balance_after"]) == (0, 20, 0)
    assert status["refunded_minor"] == 500


def test_the_status_after_a_partial_refund_shows_the_net_credit(api, deliver, credited, refund, user):
    payment_id = credited(user)
    deliver(make_event("charge.refunded", refund(payment_id, amount=125)))

    status = api.get(f"/v1/billing/purchases/{payment_id}/status").json()

    assert status["status"] == "partially_refunded"
    assert status["succeeded"] is True
    assert (status["credits_added"], status["credits_refunded"], status["balance_after"]) == (15, 5, 15)


def failed_refund_event(charge, *, amount_refunded, seconds_later=1):
    event = make_event("charge.refunded", {**charge, "amount_refunded": amount_refunded})
    event["created"] += seconds_later
    return event


def test_a_failed_refund_gives_the_credit_back_once(deliver, credited, refund, user):
    payment_id = credited(user)
    charge = refund(payment_id, amount=250)
    assert deliver(make_event("charge.refunded", charge)).status_code == 200
    assert account_of(user).balance_minor == 1000

    failed = failed_refund_event(charge, amount_refunded=0)
    again = failed_refund_event(charge, amount_refunded=0)
    assert [deliver(e).status_code for e in (failed, failed, again)] == [200, 200, 200]

    assert account_of(user).balance_minor == 2000
    assert [e.balance_delta_minor for e in refunds_of(user)] == [-1000, 1000]
    purchase = Purchase.objects.get(stripe_payment_intent_id=payment_id)
    assert (purchase.refunded_minor, purchase.status) == (0, PurchaseStatus.SUCCEEDED)


def test_an_older_refund_state_arriving_late_is_ignored(deliver, credited, refund, user):
    payment_id = credited(user)
    first = make_event("charge.refunded", refund(payment_id, amount=125))
    second = make_event("charge.refunded", refund(payment_id, amount=125))
    first["created"] -= 5

    assert deliver(second).status_code == 200
    assert deliver(first).status_code == 200

    assert account_of(user).balance_minor == 1000
    assert Purchase.objects.get(stripe_payment_intent_id=payment_id).refunded_minor == 250


def test_a_failed_refund_returns_only_what_was_really_taken(api, deliver, credited, refund, user):
    payment_id = credited(user)
    for i in range(3 + 15):  # 500 of 2000 left
        api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json")
    charge = refund(payment_id)
    deliver(make_event("charge.refunded", charge))
    assert account_of(user).balance_minor == 0

    deliver(failed_refund_event(charge, amount_refunded=0))

    assert account_of(user).balance_minor == 500, "the 1500 shortfall was never taken"
    account = account_of(user)
    assert sum(e.balance_delta_minor for e in LedgerEntry.objects.filter(account=account)) == account.balance_minor


def dispute_of(localstripe, payment_id, *, amount=500, currency="usd"):
    latest = localstripe.get(f"/v1/payment_intents/{payment_id}")["latest_charge"]
    return {
        "id": f"dp_test{payment_id[-12:]}",
        "object": "dispute",
        "amount": amount,
        "currency": currency,
        "charge": latest["id"] if isinstance(latest, dict) else latest,
        "payment_intent": payment_id,
        "reason": "fraudulent",
        "status": "needs_response",
        "metadata": {},
    }


def test_a_chargeback_takes_the_credit_back_once(api, deliver, credited, localstripe, user):
    payment_id = credited(user)
    dispute = dispute_of(localstripe, payment_id)

    responses = [deliver(make_event("charge.dispute.created", dispute)) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert account_of(user).balance_minor == 0
    [entry] = refunds_of(user)
    assert entry.balance_delta_minor == -2000
    assert entry.details["dispute"] == dispute["id"]
    status = api.get(f"/v1/billing/purchases/{payment_id}/status").json()
    assert (status["status"], status["succeeded"], status["credits_added"]) == ("refunded", False, 0)
    assert status["disputed_minor"] == 500


def test_a_won_chargeback_gives_the_credit_back_once(api, deliver, credited, localstripe, user):
    payment_id = credited(user)
    dispute = dispute_of(localstripe, payment_id)
    deliver(make_event("charge.dispute.created", dispute))
    won = {**dispute, "status": "won"}

    responses = [deliver(make_event("charge.dispute.funds_reinstated", won)) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert account_of(user).balance_minor == 2000
    assert [e.balance_delta_minor for e in refunds_of(user)] == [-2000, 2000]
    status = api.get(f"/v1/billing/purchases/{payment_id}/status").json()
    assert (status["status"], status["succeeded"], status["credits_added"]) == ("succeeded", True, 20)


def test_a_won_chargeback_of_spent_credit_gives_back_only_what_it_took(api, deliver, credited, localstripe, user):
    payment_id = credited(user)
    for i in range(3 + 15):  # 500 of 2000 left
        api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json")
    dispute = dispute_of(localstripe, payment_id)
    deliver(make_event("charge.dispute.created", dispute))

    deliver(make_event("charge.dispute.funds_reinstated", {**dispute, "status": "won"}))

    assert account_of(user).balance_minor == 500, "the 1500 shortfall was never taken"
    account = account_of(user)
    assert sum(e.balance_delta_minor for e in LedgerEntry.objects.filter(account=account)) == account.balance_minor


def test_a_won_chargeback_never_gives_back_what_a_refund_took(deliver, credited, refund, localstripe, user):
    payment_id = credited(user)
    deliver(make_event("charge.refunded", refund(payment_id, amount=125)))  # takes 500
    account = account_of(user)
    for i in range(3 + 15):  # spend the other 1500
        charge_create(
            identity=Identity(oauth_provider=account.oauth_provider, external_id=account.external_id),
            amount_minor=100,
            currency="USD",
            idempotency_key=f"k{i}",
            actor="test",
        )
    dispute = dispute_of(localstripe, payment_id, amount=375)
    deliver(make_event("charge.dispute.created", dispute))  # takes nothing: shortfall 1500

    deliver(make_event("charge.dispute.funds_reinstated", {**dispute, "status": "won"}))

    assert account_of(user).balance_minor == 0


def test_a_chargeback_of_spent_credit_stops_at_zero(api, deliver, credited, localstripe, user):
    payment_id = credited(user)
    for i in range(3 + 15):
        api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json")

    deliver(make_event("charge.dispute.created", dispute_of(localstripe, payment_id)))

    assert account_of(user).balance_minor == 0
    [entry] = refunds_of(user)
    assert (entry.balance_delta_minor, entry.details["shortfall_minor"]) == (-500, 1500)


def test_a_chargeback_after_a_partial_refund_takes_only_the_rest(deliver, credited, refund, localstripe, user):
    payment_id = credited(user)
    deliver(make_event("charge.refunded", refund(payment_id, amount=125)))

    deliver(make_event("charge.dispute.created", dispute_of(localstripe, payment_id, amount=375)))

    assert account_of(user).balance_minor == 0
    assert [e.balance_delta_minor for e in refunds_of(user)] == [-500, -1500]


def test_a_chargeback_in_another_currency_is_400(deliver, credited, localstripe, user):
    payment_id = credited(user)

    response = deliver(make_event("charge.dispute.created", dispute_of(localstripe, payment_id, currency="eur")))

    assert response.status_code == 400
    assert account_of(user).balance_minor == 2000


def test_a_chargeback_that_is_not_ours_is_200(deliver, foreign_intent, localstripe):
    dispute = dispute_of(localstripe, foreign_intent()["id"], amount=1234)

    assert deliver(make_event("charge.dispute.created", dispute)).status_code == 200
    assert not LedgerEntry.objects.exists()

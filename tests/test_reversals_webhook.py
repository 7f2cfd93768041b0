"""Refund and dispute events through the signed webhook (POST /stripe/webhook/<uuid>/).

Purchases are paid on localstripe and refunded there; the refund and dispute events
(localstripe sends none) are built from its objects and signed as Stripe signs them.
"""

# ruff: noqa: F811  (the fixtures imported from tests.test_stripe_webhooks are arguments here)
from __future__ import annotations

import itertools
import logging

import pytest

from accounts.identity import Identity
from accounts.models import Account
from charges.services import charge_create
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Purchase, Reversal
from tests.localstripe import make_event
from tests.test_stripe_webhooks import buy, credited, deliver, dispute_of, paid, refund  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def balance(user) -> int:
    return Account.objects.get(external_id=user["external_id"]).balance_minor


def spend(user, amount_minor: int) -> None:
    """Charge until `amount_minor` of the paid balance is gone (the free uses go first)."""
    identity = Identity(oauth_provider=user["oauth_provider"], external_id=user["external_id"])
    target, i = balance(user) - amount_minor, 0
    while balance(user) > target:
        charge_create(identity=identity, amount_minor=100, currency="USD", idempotency_key=f"s{i}", actor="test")
        i += 1


def at(event: dict, seconds: int) -> dict:
    """The event as Stripe would date it, `seconds` after now."""
    return {**event, "created": event["created"] + seconds}


def refund_object(localstripe, refund_id: str) -> dict:
    return localstripe.get(f"/v1/refunds/{refund_id}")


def test_a_failed_second_refund_of_spent_credit_mints_nothing(deliver, credited, refund, localstripe, user):
    payment_id = credited(user)
    half = refund(payment_id, amount=250)
    assert deliver(make_event("charge.refunded", half)).status_code == 200
    assert balance(user) == 1000
    spend(user, 1000)
    both = refund(payment_id, amount=250)
    assert deliver(at(make_event("charge.refunded", both), 1)).status_code == 200
    assert balance(user) == 0
    second = next(r for r in both["refunds"]["data"] if r["id"] not in {x["id"] for x in half["refunds"]["data"]})

    failed = {**both, "amount_refunded": 250, "refunded": False}
    failed["refunds"] = {
        **both["refunds"],
        "data": [{**r, "status": "failed"} if r["id"] == second["id"] else r for r in both["refunds"]["data"]],
    }
    assert deliver(at(make_event("charge.refunded", failed), 2)).status_code == 200
    assert deliver(at(make_event("refund.failed", {**second, "status": "failed"}), 2)).status_code == 200

    assert balance(user) == 0, "the second refund took nothing, so it gives nothing back"
    account = Account.objects.get(external_id=user["external_id"])
    assert sum(e.balance_delta_minor for e in LedgerEntry.objects.filter(account=account)) == 0


def test_funds_reinstated_delivered_before_the_dispute_was_created_ends_won(api, deliver, credited, localstripe, user):
    payment_id = credited(user)
    dispute = dispute_of(localstripe, payment_id)
    created = make_event("charge.dispute.created", dispute)
    reinstated = at(make_event("charge.dispute.funds_reinstated", {**dispute, "status": "won"}), 5)

    assert [deliver(e).status_code for e in (reinstated, created, created, reinstated)] == [200] * 4

    assert balance(user) == 2000
    status = api.get(f"/v1/billing/purchases/{payment_id}/status").json()
    assert (status["status"], status["succeeded"], status["credits_added"]) == ("succeeded", True, 20)


@pytest.mark.parametrize("status", ["warning_needs_response", "warning_under_review"])
def test_an_inquiry_takes_nothing_and_closes_with_nothing(deliver, credited, localstripe, user, status):
    payment_id = credited(user)
    inquiry = {**dispute_of(localstripe, payment_id), "status": status}

    assert deliver(make_event("charge.dispute.created", inquiry)).status_code == 200
    closed = at(make_event("charge.dispute.closed", {**inquiry, "status": "warning_closed"}), 3)
    assert deliver(closed).status_code == 200

    assert balance(user) == 2000
    assert not LedgerEntry.objects.filter(kind__in=[EntryKind.CHARGEBACK, EntryKind.CHARGEBACK_REVERSAL]).exists()


def test_refund_events_take_and_give_back_by_the_refund_id(deliver, credited, refund, localstripe, user):
    payment_id = credited(user)
    charge = refund(payment_id, amount=125)
    [made] = charge["refunds"]["data"]
    created = make_event("refund.created", refund_object(localstripe, made["id"]))

    assert [deliver(created).status_code for _ in range(2)] == [200, 200]
    assert deliver(make_event("charge.refunded", charge)).status_code == 200, "the same refund, seen on its charge"
    assert balance(user) == 1500
    failed = at(make_event("charge.refund.updated", {**made, "status": "failed"}), 2)
    assert deliver(failed).status_code == 200

    assert balance(user) == 2000
    assert Reversal.objects.get(stripe_id=made["id"]).stripe_status == "failed"
    kinds = list(
        LedgerEntry.objects.filter(kind__in=[EntryKind.REFUND, EntryKind.REFUND_REVERSAL])
        .order_by("id")
        .values_list("kind", "balance_delta_minor")
    )
    assert kinds == [(EntryKind.REFUND, -500), (EntryKind.REFUND_REVERSAL, 500)]


def test_a_refund_event_in_another_currency_is_400(deliver, credited, refund, localstripe, user):
    payment_id = credited(user)
    [made] = refund(payment_id, amount=125)["refunds"]["data"]

    response = deliver(make_event("refund.created", {**made, "currency": "eur"}))

    assert response.status_code == 400
    assert response.json()["code"] == "event_rejected"
    assert balance(user) == 2000


def test_a_refund_event_that_is_not_ours_is_200_and_ignored(deliver, credited, localstripe, user, caplog):
    credited(user)
    foreign = {
        "id": "re_foreign000001",
        "object": "refund",
        "amount": 100,
        "currency": "usd",
        "charge": "ch_foreign000001",
        "payment_intent": "pi_foreign000001",
        "status": "succeeded",
        "metadata": {},
    }

    with caplog.at_level(logging.ERROR):
        assert deliver(make_event("refund.created", foreign)).status_code == 200

    assert "not ours, ignored" in caplog.text
    assert balance(user) == 2000


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
def test_a_won_dispute_converges_over_http_in_any_order(deliver, credited, localstripe, user, order):
    payment_id = credited(user)
    dispute = dispute_of(localstripe, payment_id)
    events = [
        make_event("charge.dispute.created", dispute),
        at(make_event("charge.dispute.funds_withdrawn", dispute), 1),
        at(make_event("charge.dispute.funds_reinstated", {**dispute, "status": "won"}), 2),
        at(make_event("charge.dispute.closed", {**dispute, "status": "won"}), 3),
    ]

    for i in order:
        assert deliver(events[i]).status_code == 200
        assert deliver(events[i]).status_code == 200

    assert balance(user) == 2000
    purchase = Purchase.objects.get(stripe_payment_intent_id=payment_id)
    assert (purchase.status, purchase.disputed_minor) == ("succeeded", 0)

"""Refund and dispute events for one purchase arriving at the same instant, each on its own connection.

The account-then-purchase row locks serialise them; whatever order they commit in, the
credit ends where the latest state of each Refund and Dispute says.
"""

from __future__ import annotations

import pytest

from purchases.matching import PaymentEventNotReady
from tests.concurrency import run_in_parallel
from tests.factories import AccountFactory, paid_purchase
from tests.reversal_events import PaymentStory, deliver, outcome

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_every_event_of_a_won_dispute_after_a_failed_refund_delivered_at_once_twice(db):
    purchase = paid_purchase(
        AccountFactory(), payment_intent_id="pi_parallel00000001", credit=False, status="processing"
    )
    story = PaymentStory(purchase=purchase)
    deliver(story.event("payment_intent.succeeded", story.intent(), at=0))
    ev = story.event
    dispute = story.dispute("dp_1", amount=500, status="needs_response")
    events = [
        ev("refund.created", story.refund("re_1", amount=250, status="pending"), at=1),
        ev("refund.failed", story.refund("re_1", amount=250, status="failed"), at=2),
        ev("charge.dispute.created", dispute, at=3),
        ev("charge.dispute.funds_withdrawn", dispute, at=4),
        ev("charge.dispute.funds_reinstated", {**dispute, "status": "won"}, at=5),
        ev("charge.dispute.closed", {**dispute, "status": "won"}, at=6),
    ] * 2

    def one(i: int) -> str:
        try:
            deliver(events[i])
        except PaymentEventNotReady:  # never: the credit came first
            return "not ready"
        return "ok"

    assert run_in_parallel(len(events), one) == ["ok"] * len(events)
    assert outcome(story.purchase) == (2000, 2000, "succeeded", 0, 0)


def test_a_refund_and_a_chargeback_at_once_on_spent_credit_never_go_below_zero(db):
    purchase = paid_purchase(
        AccountFactory(), payment_intent_id="pi_parallel00000002", credit=False, status="processing"
    )
    story = PaymentStory(purchase=purchase)
    deliver(story.event("payment_intent.succeeded", story.intent(), at=0))
    events = [
        story.event("refund.created", story.refund("re_1", amount=250, status="succeeded"), at=1),
        story.event("charge.dispute.created", story.dispute("dp_1", amount=500, status="needs_response"), at=2),
    ] * 5

    run_in_parallel(len(events), lambda i: deliver(events[i]))

    assert outcome(story.purchase) == (0, 0, "refunded", 250, 500)
    assert sorted(r.held_minor for r in story.purchase.reversals.all()) == [1000, 1000]

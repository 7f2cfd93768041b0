"""purchases 0005: refunds and chargebacks recorded before reversals had their own kinds and rows.

Before, every reversal was a `refund` entry told apart by its key's prefix. The migration
labels them and records what each source took, so the next event does not take it again.
"""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import transaction

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from ledger.services import ledger_post
from purchases.models import Reversal
from tests.factories import AccountFactory, paid_purchase
from tests.reversal_events import PaymentStory, deliver

pytestmark = pytest.mark.django_db

migration = importlib.import_module("purchases.migrations.0005_reversals_from_history")


def old_entry(story: PaymentStory, *, key: str, delta: int, reversed_minor: int, **details: object) -> None:
    """An entry as the previous code wrote it: kind refund, the source in the key's prefix."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=story.purchase.account_id)
        ledger_post(
            account=account,
            kind=EntryKind.REFUND,
            balance_delta_minor=delta,
            purchase=story.purchase,
            actor="stripe:evt_old",
            idempotency_key=key,
            details={"credit_reversed_minor": reversed_minor, "shortfall_minor": 0, **details},
        )


@pytest.fixture
def story() -> PaymentStory:
    purchase = paid_purchase(
        AccountFactory(), payment_intent_id="pi_migrated00000001", credit=False, status="processing"
    )
    story = PaymentStory(purchase=purchase)
    deliver(story.event("payment_intent.succeeded", story.intent(), at=0))
    return story


def kinds(story: PaymentStory) -> list[tuple[str, int]]:
    entries = LedgerEntry.objects.filter(purchase=story.purchase).exclude(kind=EntryKind.PURCHASE).order_by("id")
    return [(e.kind, e.balance_delta_minor) for e in entries]


def test_old_refund_and_chargeback_entries_get_their_own_kinds(story):
    old_entry(story, key="stripe-refund:evt_1", delta=-500, reversed_minor=500, charge=story.charge_id)
    old_entry(story, key="stripe-refund:evt_2", delta=500, reversed_minor=-500, charge=story.charge_id)
    old_entry(story, key="stripe-dispute:dp_old", delta=-2000, reversed_minor=2000, dispute="dp_old")
    old_entry(story, key="stripe-dispute-won:dp_old", delta=2000, reversed_minor=-2000, dispute="dp_old")

    migration.forwards(apps, None)

    assert kinds(story) == [
        ("refund", -500),
        ("refund_reversal", 500),
        ("chargeback", -2000),
        ("chargeback_reversal", 2000),
    ]
    won = Reversal.objects.get(stripe_id="dp_old")
    assert (won.stripe_status, won.claimed_minor, won.held_minor) == ("won", 0, 0)


def test_a_refund_recorded_before_is_not_taken_again_by_the_next_event(story):
    old_entry(story, key="stripe-refund:evt_1", delta=-500, reversed_minor=500, charge=story.charge_id)
    story.purchase.refunded_minor, story.purchase.refund_event_created, story.purchase.status = (
        125,
        1,
        "partially_refunded",
    )
    story.purchase.save()

    migration.forwards(apps, None)
    deliver(story.event("charge.refunded", story.charge(amount_refunded=250), at=5))

    assert Account.objects.get(pk=story.purchase.account_id).balance_minor == 1000, "only the second 125 is taken"
    assert Reversal.objects.get(stripe_id=story.charge_id).held_minor == 1000


def test_a_chargeback_recorded_before_is_given_back_once_when_won(story):
    old_entry(
        story, key="stripe-dispute:dp_old", delta=-2000, reversed_minor=2000, dispute="dp_old", disputed_minor=500
    )
    story.purchase.disputed_minor, story.purchase.status = 500, "refunded"
    story.purchase.save()

    migration.forwards(apps, None)
    dispute = story.dispute("dp_old", amount=500, status="won")
    deliver(story.event("charge.dispute.closed", dispute, at=9))
    deliver(story.event("charge.dispute.funds_reinstated", dispute, at=9))

    assert Account.objects.get(pk=story.purchase.account_id).balance_minor == 2000
    assert kinds(story) == [("chargeback", -2000), ("chargeback_reversal", 2000)]

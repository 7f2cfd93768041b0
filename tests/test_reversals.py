"""Refunds and disputes, one Stripe Refund or Dispute at a time (purchases.reversals).

Each test plays one purchase of 2000 credit (500 paid) through the webhook's routing, with
Stripe's objects as its events carry them (tests/reversal_events.py).
"""

from __future__ import annotations

import logging

import pytest
from django.db.models import Sum

from accounts.identity import Identity
from accounts.models import Account, AccountStatus
from charges.services import charge_create
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Reversal
from purchases.selectors import accounts_with_chargeback_shortfall
from tests.factories import AccountFactory, paid_purchase
from tests.reversal_events import PaymentStory, deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def story() -> PaymentStory:
    account = AccountFactory()
    purchase = paid_purchase(account, payment_intent_id="pi_reversal0000000001", credit=False, status="processing")
    story = PaymentStory(purchase=purchase)
    deliver(story.event("payment_intent.succeeded", story.intent(), at=0))
    assert balance(story) == 2000
    return story


def balance(story: PaymentStory) -> int:
    return Account.objects.get(pk=story.purchase.account_id).balance_minor


def spend(story: PaymentStory, amount_minor: int) -> None:
    account = Account.objects.get(pk=story.purchase.account_id)
    identity = Identity(oauth_provider=account.oauth_provider, external_id=account.external_id)
    for i in range(amount_minor // 100):
        charge_create(identity=identity, amount_minor=100, currency="USD", idempotency_key=f"spend-{i}", actor="test")


def reversal_entries(story: PaymentStory) -> list[tuple[str, int]]:
    entries = LedgerEntry.objects.filter(purchase=story.purchase).exclude(kind=EntryKind.PURCHASE).order_by("id")
    return [(e.kind, e.balance_delta_minor) for e in entries]


def ledger_agrees(story: PaymentStory) -> bool:
    account = Account.objects.get(pk=story.purchase.account_id)
    total = LedgerEntry.objects.filter(account=account).aggregate(s=Sum("balance_delta_minor"))["s"]
    return total == account.balance_minor


# --- Point 1: a failed refund never gives back more than that refund took -------------------


def test_a_second_refund_that_failed_gives_back_nothing_it_never_took(story):
    ev = story.event
    half = story.refund("re_first", amount=250, status="succeeded", created=1)
    deliver(ev("charge.refunded", story.charge(amount_refunded=250, refunds=[half]), at=1))
    assert balance(story) == 1000, "the first refund takes back half"
    entry = LedgerEntry.objects.get(kind=EntryKind.REFUND)
    assert (entry.details["refund"], entry.details["charge"]) == ("re_first", story.charge_id)

    spend(story, 1000)
    assert balance(story) == 0, "the rest is spent"

    rest = story.refund("re_second", amount=250, status="succeeded", created=2)
    deliver(ev("charge.refunded", story.charge(amount_refunded=500, refunds=[half, rest]), at=2))
    assert balance(story) == 0, "the second refund finds nothing left: 1000 shortfall"
    second = Reversal.objects.get(stripe_id="re_second")
    assert (second.debited_minor, second.shortfall_minor) == (0, 1000)

    deliver(ev("refund.failed", {**rest, "status": "failed"}, at=3))

    assert balance(story) == 0, "the failed refund took nothing, so gives nothing back"
    assert Reversal.objects.get(stripe_id="re_first").held_minor == 1000, "the first refund keeps what it took"
    assert ledger_agrees(story)
    story.purchase.refresh_from_db()
    assert (story.purchase.refunded_minor, story.purchase.status) == (250, "partially_refunded")


def test_the_same_failure_seen_as_the_charge_total_falling_back_gives_back_nothing(story):
    """The old code gave 1000 back here: a cap by what *all* refunds debited."""
    ev = story.event
    deliver(ev("charge.refunded", story.charge(amount_refunded=250), at=1))
    spend(story, 1000)
    deliver(ev("charge.refunded", story.charge(amount_refunded=500), at=2))

    deliver(ev("charge.refunded", story.charge(amount_refunded=250), at=3))

    assert balance(story) == 0
    assert reversal_entries(story) == [("refund", -1000), ("refund", 0), ("refund_reversal", 0)]
    assert ledger_agrees(story)


def test_a_failed_refund_gives_back_what_it_took_once(story):
    ev = story.event
    refund = story.refund("re_1", amount=250, status="pending")
    deliver(ev("refund.created", refund, at=1))
    assert balance(story) == 1000, "a pending refund takes its share at once"
    failed = ev("refund.failed", {**refund, "status": "failed"}, at=2)

    deliver(failed)
    deliver(failed)
    deliver(ev("charge.refund.updated", {**refund, "status": "failed"}, at=2))

    assert balance(story) == 2000
    assert reversal_entries(story) == [("refund", -1000), ("refund_reversal", 1000)]


def test_a_canceled_refund_gives_back_and_a_refund_updated_to_succeeded_takes_once(story):
    ev = story.event
    refund = story.refund("re_1", amount=500, status="pending")
    deliver(ev("refund.created", refund, at=1))
    deliver(ev("refund.updated", {**refund, "status": "succeeded"}, at=2))
    assert balance(story) == 0

    deliver(ev("refund.updated", {**refund, "status": "canceled"}, at=3))

    assert balance(story) == 2000
    assert [k for k, _ in reversal_entries(story)] == ["refund", "refund_reversal"]


# --- Point 2: a dispute's events in any order ----------------------------------------------------


def test_funds_reinstated_before_the_dispute_was_created_ends_won(story):
    """The old code stored the reinstatement as done with nothing to give, then took the credit for good."""
    ev = story.event
    dispute = story.dispute("dp_1", amount=500, status="needs_response")
    created = ev("charge.dispute.created", dispute, at=3)
    reinstated = ev("charge.dispute.funds_reinstated", {**dispute, "status": "won"}, at=5)

    deliver(reinstated)
    deliver(created)

    assert balance(story) == 2000
    assert reversal_entries(story) == []
    story.purchase.refresh_from_db()
    assert (story.purchase.status, story.purchase.disputed_minor) == ("succeeded", 0)


def test_a_dispute_closed_lost_takes_the_credit_even_if_its_other_events_never_came(story):
    deliver(story.event("charge.dispute.closed", story.dispute("dp_1", amount=500, status="lost"), at=6))

    assert balance(story) == 0
    assert reversal_entries(story) == [("chargeback", -2000)]


def test_funds_withdrawn_takes_once_and_a_won_close_gives_it_back(story):
    ev = story.event
    dispute = story.dispute("dp_1", amount=500, status="needs_response")
    deliver(ev("charge.dispute.created", dispute, at=3))
    deliver(ev("charge.dispute.funds_withdrawn", dispute, at=3))
    deliver(ev("charge.dispute.updated", {**dispute, "status": "under_review"}, at=4))
    assert balance(story) == 0

    deliver(ev("charge.dispute.closed", {**dispute, "status": "won"}, at=6))

    assert balance(story) == 2000
    assert reversal_entries(story) == [("chargeback", -2000), ("chargeback_reversal", 2000)]


def test_a_won_dispute_never_gives_back_more_than_it_took(story):
    ev = story.event
    spend(story, 1500)
    dispute = story.dispute("dp_1", amount=500, status="needs_response")
    deliver(ev("charge.dispute.created", dispute, at=3))
    assert balance(story) == 0

    deliver(ev("charge.dispute.funds_reinstated", {**dispute, "status": "won"}, at=5))

    assert balance(story) == 500, "the 1500 shortfall was never taken"
    assert ledger_agrees(story)


# --- Point 3: inquiries withdraw nothing ----------------------------------------------------------


@pytest.mark.parametrize("status", ["warning_needs_response", "warning_under_review", "warning_closed"])
def test_an_inquiry_takes_no_credit(story, status):
    """The old code took the credit back on any charge.dispute.created."""
    deliver(story.event("charge.dispute.created", story.dispute("du_1", amount=500, status=status), at=3))

    assert balance(story) == 2000
    assert reversal_entries(story) == []


def test_an_inquiry_that_closes_gives_nothing_and_one_that_escalates_takes(story):
    ev = story.event
    inquiry = story.dispute("du_1", amount=500, status="warning_needs_response")
    deliver(ev("charge.dispute.created", inquiry, at=3))
    deliver(ev("charge.dispute.updated", {**inquiry, "status": "warning_under_review"}, at=4))
    assert balance(story) == 2000

    deliver(ev("charge.dispute.funds_withdrawn", {**inquiry, "status": "needs_response"}, at=5))

    assert balance(story) == 0, "escalated to a chargeback: the funds are withdrawn"
    assert reversal_entries(story) == [("chargeback", -2000)]


# --- Refunds and disputes together --------------------------------------------------------------


def test_a_refund_and_a_dispute_together_never_take_more_than_the_credit(story):
    ev = story.event
    deliver(ev("refund.created", story.refund("re_1", amount=250, status="succeeded"), at=1))
    deliver(ev("charge.dispute.created", story.dispute("dp_1", amount=500, status="needs_response"), at=3))
    assert balance(story) == 0
    assert reversal_entries(story) == [("refund", -1000), ("chargeback", -1000)]

    deliver(ev("refund.failed", story.refund("re_1", amount=250, status="failed"), at=4))

    assert balance(story) == 0, "the dispute alone now claims the whole credit"
    assert reversal_entries(story)[2:] == [("refund_reversal", 1000), ("chargeback", -1000)]
    assert Reversal.objects.get(stripe_id="dp_1").held_minor == 2000


def test_a_reversal_for_a_purchase_not_yet_credited_asks_stripe_to_retry():
    from purchases.matching import PaymentEventNotReady

    account = AccountFactory()
    purchase = paid_purchase(account, payment_intent_id="pi_notcredited000001", credit=False, status="processing")
    story = PaymentStory(purchase=purchase)

    with pytest.raises(PaymentEventNotReady):
        deliver(story.event("refund.created", story.refund("re_1", amount=100, status="pending"), at=1))
    assert not Reversal.objects.exists()


# --- The fraud signal -----------------------------------------------------------------------------


def shortfalls() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("billing_chargeback_shortfalls_total") or 0.0


def test_a_chargeback_of_spent_credit_flags_the_account_logs_and_counts(
    story, caplog, settings, django_capture_on_commit_callbacks
):
    settings.BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL = False
    spend(story, 1500)
    before = shortfalls()

    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        deliver(story.event("charge.dispute.created", story.dispute("dp_1", amount=500, status="needs_response"), at=3))

    account = Account.objects.get(pk=story.purchase.account_id)
    assert list(accounts_with_chargeback_shortfall()) == [account]
    assert "chargeback left a shortfall" in caplog.text
    assert shortfalls() - before == 1
    assert account.status == AccountStatus.ACTIVE, "suspension is off by default"


def test_with_the_setting_on_a_chargeback_shortfall_suspends_the_account(story, settings):
    settings.BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL = True
    spend(story, 1500)

    deliver(story.event("charge.dispute.created", story.dispute("dp_1", amount=500, status="needs_response"), at=3))

    account = Account.objects.get(pk=story.purchase.account_id)
    assert account.status == AccountStatus.SUSPENDED
    assert "Chargeback left a shortfall of 1500" in account.status_reason
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.STATUS_CHANGE).count() == 1
    assert ledger_agrees(story)


@pytest.mark.parametrize("suspend", [True, False])
def test_a_chargeback_fully_covered_or_a_refund_shortfall_flags_nothing(story, settings, suspend):
    settings.BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL = suspend
    deliver(story.event("charge.dispute.created", story.dispute("dp_1", amount=250, status="needs_response"), at=3))
    spend(story, 1000)
    deliver(story.event("refund.created", story.refund("re_1", amount=250, status="succeeded"), at=4))

    assert Reversal.objects.get(stripe_id="re_1").shortfall_minor == 1000
    assert not accounts_with_chargeback_shortfall().exists()
    assert Account.objects.get(pk=story.purchase.account_id).status == AccountStatus.ACTIVE


def test_the_flag_clears_when_the_dispute_is_won_after_all(story):
    spend(story, 1500)
    dispute = story.dispute("dp_1", amount=500, status="needs_response")
    deliver(story.event("charge.dispute.created", dispute, at=3))
    assert accounts_with_chargeback_shortfall().exists()

    deliver(story.event("charge.dispute.closed", {**dispute, "status": "won"}, at=6))

    assert not accounts_with_chargeback_shortfall().exists()


def test_a_newer_charge_total_with_the_same_amount_is_the_newest_news(story):
    """After the Refund failed, a later charge.refunded still saying 250 refunded means 250 is refunded."""
    ev = story.event
    deliver(ev("charge.refunded", story.charge(amount_refunded=250), at=1))
    deliver(ev("refund.failed", story.refund("re_1", amount=250, status="failed", created=1), at=2))
    assert balance(story) == 2000

    deliver(ev("charge.refunded", story.charge(amount_refunded=250), at=3))

    assert balance(story) == 1000

"""manage.py reconcile [--stripe]: each refund and dispute against the ledger and its Stripe object."""

from __future__ import annotations

import pytest
from django.db import transaction
from djstripe.models import Dispute as StripeDispute

from accounts.models import Account
from backoffice.reconcile import reconcile
from backoffice.reconcile_stripe import stripe_client
from ledger.models import EntryKind
from ledger.services import ledger_post
from purchases.models import Purchase
from tests.factories import AccountFactory, paid_purchase
from tests.reversal_events import PaymentStory, deliver

pytestmark = pytest.mark.django_db


def story_for(intent_id: str) -> PaymentStory:
    purchase = paid_purchase(AccountFactory(), payment_intent_id=intent_id, credit=False, status="processing")
    story = PaymentStory(purchase=purchase)
    deliver(story.event("payment_intent.succeeded", story.intent(), at=0))
    return story


def checks(found) -> list[str]:
    return [item.check for item in found]


def test_refunds_and_disputes_settled_by_their_events_reconcile_cleanly(db):
    story = story_for("pi_recon000000000001")
    deliver(story.event("refund.created", story.refund("re_1", amount=125, status="succeeded"), at=1))
    deliver(story.event("charge.refunded", story.charge(amount_refunded=125), at=1))
    dispute = story.dispute("dp_1", amount=375, status="needs_response")
    deliver(story.event("charge.dispute.created", dispute, at=3))
    deliver(story.event("charge.dispute.closed", {**dispute, "status": "won"}, at=6))

    assert reconcile() == []


def test_a_reversal_entry_without_its_reversal_is_found(db):
    story = story_for("pi_recon000000000002")
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=story.purchase.account_id)
        ledger_post(
            account=account, kind=EntryKind.REFUND, balance_delta_minor=-100, purchase=story.purchase, actor="x"
        )

    [found] = reconcile()

    assert found.check == "reversal_ledger"
    assert "took 100 credit, its reversals hold 0" in found.detail


def test_a_dispute_that_disagrees_with_dj_stripes_stored_copy_is_found(db):
    story = story_for("pi_recon000000000003")
    dispute = story.dispute("dp_stored", amount=500, status="needs_response")
    deliver(story.event("charge.dispute.created", dispute, at=3))
    StripeDispute.objects.create(id="dp_stored", livemode=False, stripe_data={**dispute, "status": "won"})

    [found] = reconcile()

    assert found.check == "reversal_differs_from_stored_stripe"
    assert "we hold needs_response 500, dj-stripe's stored copy holds won 500" in found.detail
    assert "resend Stripe's latest event for dp_stored" in found.fixes[0]


def test_with_stripe_each_reversal_is_compared_with_stripes_object(stripe_settings, localstripe, user, api):
    response = api.post("/v1/billing/purchases", user, format="json")
    payment_id = response.json()["payment_id"]
    localstripe.pay(payment_id)
    story = PaymentStory(purchase=Purchase.objects.get(stripe_payment_intent_id=payment_id))
    deliver(story.event("payment_intent.succeeded", {**story.intent()}, at=0))
    made = localstripe.client.v1.refunds.create(params={"payment_intent": payment_id, "amount": 125}).to_dict()
    deliver(story.event("refund.created", {**made, "status": "pending"}, at=1))  # Stripe says succeeded
    deliver(story.event("charge.dispute.created", story.dispute("dp_nowhere", amount=375, status="lost"), at=2))

    # The session's localstripe also holds other tests' payments: only the reversal checks here.
    found = [item for item in reconcile(stripe_client=stripe_client()) if item.check.startswith("reversal_")]

    assert checks(found) == ["reversal_differs_from_stripe", "reversal_unknown_to_stripe"]
    assert f"refund {made['id']}" in found[0].subject
    assert "we hold pending 125, Stripe holds succeeded 125" in found[0].detail
    assert "dp_nowhere" in found[1].subject

"""Refunds and chargebacks, keyed by Stripe's own Refund and Dispute ids.

Every event about a purchase's refunds or disputes (refund.created / updated / failed,
charge.refund.updated, charge.refunded, charge.dispute.*) records the state it shows of
each Refund or Dispute (one Reversal row per Stripe id, an older state never replacing a
newer one: purchases.reversal_states), then `purchases.settlement.settle` recomputes, from the latest state of
every reversal of the purchase, the credit each one should take, and posts the
differences. So the credit lost is a function of where each Refund and Dispute ended,
never of the order Stripe delivered the events in:
- each reversal takes its share of the credit (`credit * amount // paid`, floored on the
  running total so the shares never add up past the credit), never below zero: what the
  balance cannot cover (credit already spent) is its shortfall;
- when a reversal takes less (a refund failed, a dispute was won, an inquiry closed), its
  shortfall goes first, then it gives back at most what it itself debited: no give-back
  ever returns credit that no reversal took (issue 10, point 1);
- inquiries (warning_*) take nothing; a chargeback takes when its funds are withdrawn.
A chargeback that leaves a shortfall is a fraud signal: logged, counted, and, with
BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL, the account is suspended.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from billing_site import metrics
from ledger.models import LedgerEntry
from purchases.locking import lock_account_and_purchase
from purchases.matching import (
    PaymentEventNotReady,
    charge_purchase,
    dispute_purchase,
    ignored_if_not_ours,
    refund_intent_id,
    refund_purchase,
    reject,
)
from purchases.models import Purchase, Reversal, ReversalKind
from purchases.reversal_states import (
    ReversalState,
    charge_states,
    dispute_state,
    listed_refunds,
    refund_state,
    stored_precedence,
)
from purchases.services import credit_entry
from purchases.settlement import chargeback_shortfall, settle

logger = logging.getLogger(__name__)


# --- The three kinds of event ------------------------------------------------------------


def purchase_refund(*, charge: dict[str, Any], event_id: str, event_created: int = 0) -> list[LedgerEntry]:
    """`charge.refunded`: the Refunds the charge lists, and its refunded total (amount_refunded).

    Returns the ledger entries posted (none when nothing changed, or the charge is not ours).
    """
    if ignored_if_not_ours(intent_id=charge.get("payment_intent"), obj=charge, event_id=event_id):
        return []
    purchase = charge_purchase(charge=charge, event_id=event_id)
    refunded = charge.get("amount_refunded")
    if type(refunded) is not int or not 0 <= refunded <= purchase.amount_minor:
        raise reject("bad amount_refunded", event_id=event_id, purchase_id=purchase.pk, amount_refunded=refunded)
    if not isinstance(charge.get("id"), str) or not charge["id"]:
        raise reject("charge without an id", event_id=event_id, purchase_id=purchase.pk)
    for refund in listed_refunds(charge):
        amount = refund.get("amount")
        if type(amount) is not int or not 0 < amount <= purchase.amount_minor:
            raise reject("bad refund amount", event_id=event_id, purchase_id=purchase.pk, refund=refund["id"])
    return _apply(purchase=purchase, states=charge_states(charge, event_created=event_created), event_id=event_id)


def purchase_refund_changed(
    *, refund: dict[str, Any], event_type: str, event_id: str, event_created: int = 0
) -> list[LedgerEntry]:
    """`refund.created` / `refund.updated` / `refund.failed` / `charge.refund.updated`: one Refund's state."""
    if ignored_if_not_ours(intent_id=refund_intent_id(refund), obj=refund, event_id=event_id):
        return []
    purchase = refund_purchase(refund=refund, event_id=event_id)
    state = refund_state(refund, event_type=event_type, event_created=event_created)
    return _apply(purchase=purchase, states=[state], event_id=event_id)


def purchase_dispute(
    *, dispute: dict[str, Any], event_type: str, event_id: str, event_created: int = 0
) -> list[LedgerEntry]:
    """`charge.dispute.*` (created, updated, funds_withdrawn, funds_reinstated, closed): one Dispute's state."""
    if ignored_if_not_ours(intent_id=dispute.get("payment_intent"), obj=dispute, event_id=event_id):
        return []
    purchase = dispute_purchase(dispute=dispute, event_id=event_id)
    if not isinstance(dispute.get("id"), str) or not dispute["id"]:
        raise reject("dispute without an id", event_id=event_id, purchase_id=purchase.pk)
    state = dispute_state(dispute, event_type=event_type, event_created=event_created)
    return _apply(purchase=purchase, states=[state], event_id=event_id)


# --- Recording states and settling the credit -----------------------------------------------


def _apply(*, purchase: Purchase, states: list[ReversalState], event_id: str) -> list[LedgerEntry]:
    with transaction.atomic():
        account, purchase = lock_account_and_purchase(purchase=purchase)
        if credit_entry(purchase) is None:
            # Stripe does not order deliveries; the credit will come, then Stripe's retry of this.
            raise PaymentEventNotReady(f"purchase {purchase.pk} is refunded or disputed but not credited yet")
        changed = [state for state in states if _record(purchase=purchase, state=state, event_id=event_id)]
        if not changed:
            logger.info(
                "reversal state already applied", extra={"purchase_id": str(purchase.pk), "stripe_event": event_id}
            )
            return []
        settlement = settle(account=account, purchase=purchase, event_id=event_id)
        charge_events = [s.event_created for s in changed if s.kind == ReversalKind.CHARGE_REFUNDS]
        purchase.refund_event_created = max([purchase.refund_event_created, *charge_events])
        purchase.save(
            update_fields=["refunded_minor", "disputed_minor", "status", "refund_event_created", "updated_at"]
        )
        if settlement.chargeback_shortfall_minor:
            chargeback_shortfall(account=account, purchase=purchase, settlement=settlement, event_id=event_id)
    for entry in settlement.entries:
        log = logger.warning if entry.details.get("shortfall_minor") else logger.info
        log(
            "purchase %s",
            entry.kind,
            extra={
                "purchase_id": str(purchase.pk),
                "account_id": str(purchase.account_id),
                "reversal": entry.details.get("reversal"),
                "balance_delta_minor": entry.balance_delta_minor,
                "shortfall_minor": entry.details.get("shortfall_minor", 0),
                "stripe_event": event_id,
            },
        )
    if settlement.entries:
        metrics.observe_purchase(outcome=str(purchase.status))
    return settlement.entries


def _record(*, purchase: Purchase, state: ReversalState, event_id: str) -> bool:
    """Store this state of its Refund or Dispute unless a newer one is stored; True if it changed anything."""
    row = Reversal.objects.filter(stripe_id=state.stripe_id).first()
    if row is None:
        Reversal.objects.create(
            stripe_id=state.stripe_id,
            purchase=purchase,
            kind=state.kind,
            amount_minor=state.amount_minor,
            stripe_status=state.status,
            stripe_charge_id=state.charge_id,
            takes_funds=state.takes_funds,
            stripe_created=state.stripe_created,
            state_rank=state.rank,
            state_created=state.event_created,
            state_event_id=event_id,
        )
        return True
    if row.purchase_id != purchase.pk or row.kind != state.kind:
        raise reject("refund or dispute recorded for another purchase", event_id=event_id, stripe_object=row.stripe_id)
    stored = stored_precedence(
        kind=row.kind, state_rank=row.state_rank, state_created=row.state_created, amount_minor=row.amount_minor
    )
    if state.precedence() < stored:
        logger.info("older reversal state ignored", extra={"stripe_object": row.stripe_id, "stripe_event": event_id})
        return False
    # A newer event with the same content still counts: for a charge's total, being the
    # newest news is what decides between it and the Refund objects (allocate).
    before = (row.amount_minor, row.stripe_status, row.takes_funds, row.state_rank, row.state_created)
    row.amount_minor, row.stripe_status, row.takes_funds = state.amount_minor, state.status, state.takes_funds
    row.state_rank, row.state_created = state.rank, state.event_created
    if before == (row.amount_minor, row.stripe_status, row.takes_funds, row.state_rank, row.state_created):
        return False  # the same state again
    row.state_event_id = event_id
    row.stripe_created = state.stripe_created or row.stripe_created
    row.stripe_charge_id = state.charge_id or row.stripe_charge_id
    row.save()
    return True

"""Refunds and chargebacks: take the credit of a purchase back, and give it back when they fail.

`charge.refunded` takes the refunded share of the credit back (`purchase_refund`), never
below zero; what could not be taken back is recorded on the ledger entry. A refund that
failed (amount_refunded went down) gives the difference back, and a chargeback
(`charge.dispute.created`, `purchase_dispute`) is taken back like a refund.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Sum

from accounts.models import Account
from billing_site import metrics
from ledger.models import EntryKind, LedgerEntry
from ledger.services import ledger_post
from purchases.locking import lock_account_and_purchase
from purchases.matching import (
    PaymentEventNotReady,
    charge_purchase,
    dispute_purchase,
    ignored_if_not_ours,
    reject,
)
from purchases.models import Purchase, PurchaseStatus
from purchases.services import credit_entry

logger = logging.getLogger(__name__)


def credit_taken_back(purchase: Purchase, *, taken_minor: int | None = None) -> int:
    """Credit units reversed for what was refunded and disputed (floored, at most the credit)."""
    if taken_minor is None:
        taken_minor = purchase.refunded_minor + purchase.disputed_minor
    return purchase.credit_minor * min(taken_minor, purchase.amount_minor) // purchase.amount_minor


def _taken_back_status(purchase: Purchase) -> PurchaseStatus:
    taken = purchase.refunded_minor + purchase.disputed_minor
    if taken >= purchase.amount_minor:
        return PurchaseStatus.REFUNDED
    return PurchaseStatus.PARTIALLY_REFUNDED if taken > 0 else PurchaseStatus.SUCCEEDED


def _move_taken_back(
    *,
    account: Account,
    purchase: Purchase,
    refunded: int,
    disputed: int,
    event_id: str,
    idempotency_key: str,
    reason: str,
    details: dict[str, Any],
) -> tuple[LedgerEntry, int]:
    """Post the ledger entry that moves the purchase from its recorded refunded/disputed
    amounts to new ones, and record them; account and purchase are locked by the caller.

    More taken back: the credit share is debited, never below zero; the rest is the
    shortfall. Less (a refund failed, a dispute was won): the share is given back, but never
    more than the entries of that source (refunds, or the dispute, told by the idempotency
    key's prefix) actually debited: a shortfall was never taken, so is not returned.
    Returns (entry, shortfall).
    """
    before = credit_taken_back(purchase)
    after = credit_taken_back(purchase, taken_minor=refunded + disputed)
    change = after - before
    shortfall = 0
    if change >= 0:
        delta = -min(change, account.balance_minor)
        shortfall = change + delta
    else:
        # Only what this kind of event took (refunds, or the dispute) is given back by it:
        # a failed refund never returns a chargeback's debit, nor a won dispute a refund's.
        source = idempotency_key.split(":", 1)[0].removesuffix("-won")
        debited = -(
            LedgerEntry.objects.filter(
                purchase=purchase, kind=EntryKind.REFUND, idempotency_key__startswith=f"{source}"
            ).aggregate(total=Sum("balance_delta_minor"))["total"]
            or 0
        )
        delta = min(-change, max(debited, 0))
    entry = ledger_post(
        account=account,
        kind=EntryKind.REFUND,
        balance_delta_minor=delta,
        purchase=purchase,
        actor=f"stripe:{event_id}",
        reason=reason,
        idempotency_key=idempotency_key,
        details={
            "stripe_event": event_id,
            "payment_intent": purchase.stripe_payment_intent_id,
            **details,
            "credit_reversed_minor": change,
            "shortfall_minor": shortfall,
        },
    )
    purchase.refunded_minor = refunded
    purchase.disputed_minor = disputed
    purchase.status = _taken_back_status(purchase)
    return entry, shortfall


def _log_taken_back(what: str, *, purchase: Purchase, entry: LedgerEntry, shortfall: int, event_id: str) -> None:
    log = logger.warning if shortfall else logger.info
    log(
        what,
        extra={
            "purchase_id": str(purchase.pk),
            "account_id": str(purchase.account_id),
            "balance_delta_minor": entry.balance_delta_minor,
            "shortfall_minor": shortfall,
            "stripe_event": event_id,
        },
    )
    metrics.observe_purchase(outcome=str(purchase.status))


def purchase_refund(*, charge: dict[str, Any], event_id: str, event_created: int = 0) -> LedgerEntry | None:
    """Bring the credit in line with what Stripe refunded so far, never below zero.

    Stripe's charge carries the cumulative `amount_refunded`; the purchase remembers the
    amount it last applied (`refunded_minor`, under the row lock), so replays and several
    partial refunds each move only the difference. The credit reversed is
    `credit_minor * amount_refunded // amount_minor` (floored); the part the balance cannot
    cover (already spent) is recorded as `shortfall_minor`.

    `amount_refunded` going down means a refund failed: the difference is given back. As
    Stripe does not order deliveries, a charge state older (by the event's `created`) than
    the newest one applied is ignored, and within the same second only increases apply.
    Returns the ledger entry, or None when there was nothing to change (or not ours).
    """
    if ignored_if_not_ours(intent_id=charge.get("payment_intent"), obj=charge, event_id=event_id):
        return None
    purchase = charge_purchase(charge=charge, event_id=event_id)
    refunded = charge.get("amount_refunded")
    if type(refunded) is not int or not 0 <= refunded <= purchase.amount_minor:
        raise reject("bad amount_refunded", event_id=event_id, purchase_id=purchase.pk, amount_refunded=refunded)
    charge_id = str(charge.get("id") or "")
    with transaction.atomic():
        account, purchase = lock_account_and_purchase(purchase=purchase)
        if credit_entry(purchase) is None:
            # Stripe does not order deliveries; the credit will come, then the retry of this.
            raise PaymentEventNotReady(f"purchase {purchase.pk} is refunded but not credited yet")
        stale = event_created < purchase.refund_event_created or (
            event_created == purchase.refund_event_created and refunded < purchase.refunded_minor
        )
        if refunded == purchase.refunded_minor or stale:
            logger.info(
                "refund already applied" if not stale else "older refund state ignored",
                extra={"purchase_id": str(purchase.pk), "stripe_event": event_id, "amount_refunded": refunded},
            )
            return None
        previous = purchase.refunded_minor
        entry, shortfall = _move_taken_back(
            account=account,
            purchase=purchase,
            refunded=refunded,
            disputed=purchase.disputed_minor,
            event_id=event_id,
            idempotency_key=f"stripe-refund:{event_id}",
            reason=(
                f"Refund of {refunded - previous} {purchase.currency} minor units"
                if refunded > previous
                else f"Failed refund: {previous - refunded} {purchase.currency} minor units returned"
            ),
            details={
                "charge": charge_id,
                "refunded_minor": refunded - previous,
                "amount_refunded_total": refunded,
            },
        )
        purchase.refund_event_created = max(event_created, purchase.refund_event_created)
        purchase.save(
            update_fields=["refunded_minor", "disputed_minor", "status", "refund_event_created", "updated_at"]
        )
    what = "purchase refunded" if refunded > previous else "purchase refund failed, credit returned"
    _log_taken_back(what, purchase=purchase, entry=entry, shortfall=shortfall, event_id=event_id)
    return entry


def purchase_dispute(*, dispute: dict[str, Any], event_id: str) -> LedgerEntry | None:
    """A chargeback (`charge.dispute.created`): take the disputed share back like a refund.

    The disputed funds are withdrawn from us when the dispute opens, so the credit goes
    back then, never below zero (shortfall recorded). Stripe allows one dispute per charge:
    a second event for it changes nothing. A dispute we win gives the credit back
    (`purchase_dispute_reinstated`).
    Returns the ledger entry, or None when there was nothing to change (or not ours).
    """
    if ignored_if_not_ours(intent_id=dispute.get("payment_intent"), obj=dispute, event_id=event_id):
        return None
    purchase = dispute_purchase(dispute=dispute, event_id=event_id)
    amount: int = dispute["amount"]
    with transaction.atomic():
        account, purchase = lock_account_and_purchase(purchase=purchase)
        if credit_entry(purchase) is None:
            raise PaymentEventNotReady(f"purchase {purchase.pk} is disputed but not credited yet")
        if purchase.disputed_minor:
            logger.info("dispute already applied", extra={"purchase_id": str(purchase.pk), "stripe_event": event_id})
            return None
        entry, shortfall = _move_taken_back(
            account=account,
            purchase=purchase,
            refunded=purchase.refunded_minor,
            disputed=amount,
            event_id=event_id,
            idempotency_key=f"stripe-dispute:{dispute.get('id') or event_id}",
            reason=f"Chargeback of {amount} {purchase.currency} minor units",
            details={"dispute": str(dispute.get("id") or ""), "disputed_minor": amount},
        )
        purchase.save(update_fields=["refunded_minor", "disputed_minor", "status", "updated_at"])
    _log_taken_back("purchase disputed", purchase=purchase, entry=entry, shortfall=shortfall, event_id=event_id)
    return entry


def purchase_dispute_reinstated(*, dispute: dict[str, Any], event_id: str) -> LedgerEntry | None:
    """A chargeback we won (`charge.dispute.funds_reinstated`): the disputed funds are ours
    again, so the credit the dispute took back is given back, once, and never more than
    the dispute actually debited (a shortfall was never taken, so is not returned).
    Returns the ledger entry, or None when there was nothing to give back (or not ours).
    """
    if ignored_if_not_ours(intent_id=dispute.get("payment_intent"), obj=dispute, event_id=event_id):
        return None
    purchase = dispute_purchase(dispute=dispute, event_id=event_id)
    with transaction.atomic():
        account, purchase = lock_account_and_purchase(purchase=purchase)
        if not purchase.disputed_minor:
            logger.info("no dispute to reinstate", extra={"purchase_id": str(purchase.pk), "stripe_event": event_id})
            return None
        entry, shortfall = _move_taken_back(
            account=account,
            purchase=purchase,
            refunded=purchase.refunded_minor,
            disputed=0,
            event_id=event_id,
            idempotency_key=f"stripe-dispute-won:{dispute.get('id') or event_id}",
            reason="Chargeback won: the credit is given back",
            details={"dispute": str(dispute.get("id") or ""), "reinstated_minor": purchase.disputed_minor},
        )
        purchase.save(update_fields=["refunded_minor", "disputed_minor", "status", "updated_at"])
    _log_taken_back("purchase dispute won", purchase=purchase, entry=entry, shortfall=shortfall, event_id=event_id)
    return entry

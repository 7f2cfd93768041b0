"""The settlement of a purchase's refunds and chargebacks: from the latest state of every
Reversal row, the credit each should take (`allocate`), and the ledger entries that move the
balance there (`settle`), each give-back capped by what that very reversal debited.

Called by purchases.reversals with the account and purchase rows locked (in that order).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from ledger.reversals import reversal_flag_shortfall, reversal_take
from ledger.services import ledger_post
from purchases.models import Purchase, PurchaseStatus, Reversal, ReversalKind

logger = logging.getLogger(__name__)

# The ledger kinds by reversal kind (a charge's refunded total posts as refunds).
_TAKE_KIND: dict[str, EntryKind] = {ReversalKind.DISPUTE: EntryKind.CHARGEBACK}
_GIVE_KIND: dict[str, EntryKind] = {ReversalKind.DISPUTE: EntryKind.CHARGEBACK_REVERSAL}
_LABEL: dict[str, str] = {ReversalKind.DISPUTE: "Chargeback", ReversalKind.REFUND: "Refund"}
_REFERENCE: dict[str, str] = {ReversalKind.DISPUTE: "dispute", ReversalKind.REFUND: "refund"}


def credit_taken_back(purchase: Purchase, *, taken_minor: int | None = None) -> int:
    """Credit units reversed for what was refunded and disputed (floored, at most the credit)."""
    if taken_minor is None:
        taken_minor = purchase.refunded_minor + purchase.disputed_minor
    return purchase.credit_minor * min(taken_minor, purchase.amount_minor) // purchase.amount_minor


@dataclass
class Settlement:
    entries: list[LedgerEntry] = field(default_factory=list)
    # Credit a chargeback could not take back in this settlement (already spent): the fraud signal.
    chargeback_shortfall_minor: int = 0


def allocate(purchase: Purchase, rows: list[Reversal]) -> tuple[dict[int, int], int, int]:
    """The credit each reversal should claim now, and the purchase's refunded and disputed amounts.

    Refunds are counted once: by the charge's amount_refunded when that is the newest news
    (a charge.refunded is authoritative over the Refunds it may list), else by the Refund
    objects plus what the total covers beyond them; the refunded amount goes to the Refund
    objects first (oldest first), the rest to the charge-level row. Disputes come after refunds.
    Returns (targets by row id, refunded, disputed).
    """
    refunds = [r for r in rows if r.kind == ReversalKind.REFUND]
    totals = [r for r in rows if r.kind == ReversalKind.CHARGE_REFUNDS]
    disputes = [r for r in rows if r.kind == ReversalKind.DISPUTE]
    by_objects = sum(r.amount_minor for r in refunds if r.takes_funds)
    newest_object = max((r.state_created for r in refunds), default=None)
    total = max(totals, key=lambda r: (r.state_created, r.amount_minor), default=None)
    if total is None:
        refunded = by_objects
    elif newest_object is None or total.state_created >= newest_object:
        refunded = total.amount_minor
    else:
        # Refund objects changed since the total: they count for themselves, the total
        # only for refunds it covers that we do not know one by one. A refund it covered:
        # made by then, and taking funds then (it takes them now, or changed only later,
        # as statuses move from taking to not taking).
        at = total.state_created
        covered = sum(
            r.amount_minor for r in refunds if r.stripe_created <= at and (r.takes_funds or r.state_created > at)
        )
        refunded = by_objects + max(0, total.amount_minor - covered)
    refunded = min(refunded, purchase.amount_minor)
    money: dict[int, int] = {}
    left = refunded
    for row in refunds:
        money[row.pk] = min(row.amount_minor if row.takes_funds else 0, left)
        left -= money[row.pk]
    for row in totals:
        money[row.pk] = left if row is total else 0
    for row in disputes:
        money[row.pk] = row.amount_minor if row.takes_funds else 0
    disputed = sum(money[row.pk] for row in disputes)
    targets: dict[int, int] = {}
    running = before = 0
    for row in refunds + totals + disputes:
        running += money[row.pk]
        share = credit_taken_back(purchase, taken_minor=running)
        targets[row.pk], before = share - before, share
    return targets, refunded, disputed


def settle(*, account: Account, purchase: Purchase, event_id: str) -> Settlement:
    """Post, for every reversal of the purchase, the difference between its claim and its target.

    Account and purchase are locked by the caller. Give-backs go first, so a claim that
    moves from one reversal to another (a charge total replaced by its Refund objects)
    moves the same credit.
    """
    rows = list(Reversal.objects.filter(purchase=purchase).order_by("stripe_created", "stripe_id"))
    targets, refunded, disputed = allocate(purchase, rows)
    settlement = Settlement()
    for row in rows:
        if targets[row.pk] < row.claimed_minor:
            settlement.entries.append(_give_back(account, purchase, row, target=targets[row.pk], event_id=event_id))
    for row in rows:
        if targets[row.pk] > row.claimed_minor:
            entry = _take(account, purchase, row, target=targets[row.pk], event_id=event_id)
            settlement.entries.append(entry)
            if row.kind == ReversalKind.DISPUTE:
                settlement.chargeback_shortfall_minor += entry.details["shortfall_minor"]
    purchase.refunded_minor, purchase.disputed_minor = refunded, disputed
    taken = refunded + disputed
    purchase.status = (
        PurchaseStatus.REFUNDED
        if taken >= purchase.amount_minor
        else PurchaseStatus.PARTIALLY_REFUNDED
        if taken > 0
        else PurchaseStatus.SUCCEEDED
    )
    return settlement


def _give_back(account: Account, purchase: Purchase, row: Reversal, *, target: int, event_id: str) -> LedgerEntry:
    released = row.claimed_minor - target
    from_shortfall = min(released, row.shortfall_minor)
    give = released - from_shortfall  # at most row.held_minor: claimed = held + shortfall
    row.shortfall_minor -= from_shortfall
    row.returned_minor += give
    row.claimed_minor = target
    row.save(update_fields=["shortfall_minor", "returned_minor", "claimed_minor", "updated_at"])
    why = "won" if row.stripe_status == "won" else row.stripe_status or "reduced"
    return _post(
        account,
        purchase,
        row,
        kind=_GIVE_KIND.get(row.kind, EntryKind.REFUND_REVERSAL),
        delta=give,
        event_id=event_id,
        reason=f"{_label(row)} {why}: {give} credit given back ({from_shortfall} of its shortfall was never taken)",
        details={"credit_reversed_minor": -released, "shortfall_minor": 0, "shortfall_released_minor": from_shortfall},
    )


def _take(account: Account, purchase: Purchase, row: Reversal, *, target: int, event_id: str) -> LedgerEntry:
    wanted = target - row.claimed_minor
    take = reversal_take(wanted=wanted, available=account.balance_minor).taken
    row.debited_minor += take
    row.shortfall_minor += wanted - take
    row.claimed_minor = target
    row.save(update_fields=["debited_minor", "shortfall_minor", "claimed_minor", "updated_at"])
    return _post(
        account,
        purchase,
        row,
        kind=_TAKE_KIND.get(row.kind, EntryKind.REFUND),
        delta=-take,
        event_id=event_id,
        reason=f"{_label(row)} of {row.amount_minor} {purchase.currency} minor units",
        details={"credit_reversed_minor": wanted, "shortfall_minor": wanted - take},
    )


def _label(row: Reversal) -> str:
    return f"{_LABEL.get(row.kind, 'Refunds of charge')} {row.stripe_id}"


def _post(
    account: Account,
    purchase: Purchase,
    row: Reversal,
    *,
    kind: EntryKind,
    delta: int,
    event_id: str,
    reason: str,
    details: dict[str, Any],
) -> LedgerEntry:
    reference = _REFERENCE.get(row.kind, "charge")
    return ledger_post(
        account=account,
        kind=kind,
        balance_delta_minor=delta,
        purchase=purchase,
        actor=f"stripe:{event_id}",
        reason=reason,
        idempotency_key=f"reversal:{row.stripe_id}:{event_id}",
        details={
            "stripe_event": event_id,
            "payment_intent": purchase.stripe_payment_intent_id,
            "reversal": row.stripe_id,
            reference: row.stripe_id,
            "charge": row.stripe_charge_id,
            "stripe_status": row.stripe_status,
            "amount_minor": row.amount_minor,
            **details,
            "reversal_shortfall_minor": row.shortfall_minor,
        },
    )


def chargeback_shortfall(*, account: Account, purchase: Purchase, settlement: Settlement, event_id: str) -> None:
    """A chargeback found the credit already spent: the fraud signal (ledger.reversals)."""
    reversal_flag_shortfall(
        account=account,
        shortfall_minor=settlement.chargeback_shortfall_minor,
        what="Chargeback",
        subject=f"purchase {purchase.pk}",
        actor=f"stripe:{event_id}",
        log_fields={"purchase_id": str(purchase.pk), "stripe_event": event_id},
    )

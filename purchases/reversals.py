"""Refunds and chargebacks, keyed by Stripe's own Refund and Dispute ids.

Every event about a purchase's refunds or disputes (refund.created / updated / failed,
charge.refund.updated, charge.refunded, charge.dispute.*) records the state it shows of
each Refund or Dispute (one Reversal row per Stripe id, an older state never replacing a
newer one: purchases.reversal_states), then `settle` recomputes, from the latest state of
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
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from billing_site import metrics
from ledger.models import EntryKind, LedgerEntry
from ledger.services import ledger_post
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
from purchases.models import Purchase, PurchaseStatus, Reversal, ReversalKind
from purchases.reversal_states import (
    ReversalState,
    charge_states,
    dispute_state,
    listed_refunds,
    refund_state,
    stored_precedence,
)
from purchases.services import credit_entry

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


@dataclass
class Settlement:
    entries: list[LedgerEntry] = field(default_factory=list)
    # Credit a chargeback could not take back in this settlement (already spent): the fraud signal.
    chargeback_shortfall_minor: int = 0


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
            _chargeback_shortfall(account=account, purchase=purchase, settlement=settlement, event_id=event_id)
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
    take = min(wanted, account.balance_minor)
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


def _chargeback_shortfall(*, account: Account, purchase: Purchase, settlement: Settlement, event_id: str) -> None:
    """A chargeback found the credit already spent: the fraud signal (log, metric, optional suspension)."""
    shortfall = settlement.chargeback_shortfall_minor

    def signal() -> None:  # after commit: a delivery that rolls back (and is retried) says nothing
        logger.warning(
            "chargeback left a shortfall: the credit was already spent",
            extra={
                "account_id": str(account.pk),
                "purchase_id": str(purchase.pk),
                "shortfall_minor": shortfall,
                "stripe_event": event_id,
            },
        )
        metrics.observe_chargeback_shortfall(amount_minor=shortfall)

    transaction.on_commit(signal)
    if settings.BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL and account.status == AccountStatus.ACTIVE:
        account_set_status(
            account_id=account.pk,
            status=AccountStatus.SUSPENDED,
            reason=f"Chargeback left a shortfall of {shortfall} (purchase {purchase.pk})",
            actor=f"stripe:{event_id}",
        )

"""The one function through which any balance or free-use count changes."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from billing_site import metrics
from billing_site.errors import InvalidOperation
from ledger.models import EntryKind, LedgerEntry
from ledger.writes import write_movement

if TYPE_CHECKING:
    from accounts.models import Account
    from charges.models import Charge
    from purchases.models import Purchase

# Column limits: free uses and use counts are 32-bit, balances 64-bit.
MAX_COUNT = 2**31 - 1
MAX_BALANCE_MINOR = 2**63 - 1

# Paid credit arriving by these kinds makes the account "pro" (DESIGN: Money and units).
PAID_CREDIT_KINDS = frozenset({EntryKind.PURCHASE, EntryKind.GRANT, EntryKind.MIGRATION})

# The account columns a movement reads and writes: the compare-and-set guards all of them.
_GUARDED = ("balance_minor", "free_uses_remaining", "daily_free_uses_remaining", "daily_free_uses_day", "total_uses")


class LedgerInvariantError(Exception):
    """A movement would take a balance below zero: a bug in the caller, never user input."""


class StaleAccount(LedgerInvariantError):
    """The account row changed since the caller read it (or its status is not the one expected)."""


@dataclass(frozen=True)
class Movement:
    """One ledger entry's worth of change, for `ledger_post_many`."""

    kind: EntryKind
    balance_delta_minor: int = 0
    free_uses_delta: int = 0
    daily_free_uses_delta: int = 0
    uses_delta: int = 0
    reason: str = ""
    charge_id: uuid.UUID | None = None
    purchase: Purchase | None = None
    idempotency_key: str | None = None
    request_fingerprint: str = ""
    details: dict[str, Any] | None = None


def ledger_post(
    *,
    account: Account,
    kind: EntryKind,
    actor: str,
    balance_delta_minor: int = 0,
    free_uses_delta: int = 0,
    daily_free_uses_delta: int = 0,
    uses_delta: int = 0,
    reason: str = "",
    charge: Charge | None = None,
    purchase: Purchase | None = None,
    idempotency_key: str | None = None,
    request_fingerprint: str = "",
    details: dict[str, Any] | None = None,
) -> LedgerEntry:
    """Apply a movement to a locked account and record it, in the caller's transaction.

    The caller must hold the account row lock (`select_for_update`) taken inside the
    current `transaction.atomic()` block: the new balance is computed from the locked
    row, then written with the entry, so the two can never disagree.
    """
    movement = Movement(
        kind=kind,
        balance_delta_minor=balance_delta_minor,
        free_uses_delta=free_uses_delta,
        daily_free_uses_delta=daily_free_uses_delta,
        uses_delta=uses_delta,
        reason=reason,
        charge_id=charge.pk if charge is not None else None,
        purchase=purchase,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        details=details,
    )
    return ledger_post_many(account=account, actor=actor, movements=[movement])[0]


def ledger_post_many(
    *,
    account: Account,
    actor: str,
    movements: list[Movement],
    daily_free_uses_day: datetime.date | None = None,
    expected_status: str | None = None,
    companion: Model | None = None,
) -> list[LedgerEntry]:
    """Apply several movements to one account in one UPDATE, recorded as one INSERT of entries.

    `companion` is an unsaved row the entries reference (the charge), written with them
    (ledger.writes: one statement on PostgreSQL).

    The UPDATE is a compare-and-set on the values the caller read: with the row locked it
    always applies; without the lock (the charge's optimistic path) it takes the row lock
    itself and applies only if nothing changed since the read (and the status is still
    `expected_status`, when given), else raises StaleAccount and the caller retries locked.
    `daily_free_uses_day` moves the row to that UTC day (the daily top-up).
    """
    if not transaction.get_connection().in_atomic_block:
        raise LedgerInvariantError("ledger_post must run inside transaction.atomic() with the account locked")

    balance, free_uses, daily, total_uses = (
        account.balance_minor,
        account.free_uses_remaining,
        account.daily_free_uses_remaining,
        account.total_uses,
    )
    entries = []
    gained_paid_credit = False
    for m in movements:
        balance += m.balance_delta_minor
        free_uses += m.free_uses_delta
        daily += m.daily_free_uses_delta
        total_uses += m.uses_delta
        if balance < 0 or free_uses < 0 or daily < 0:
            raise LedgerInvariantError(
                f"movement would leave balance {balance} / free uses {free_uses} / daily free uses {daily}"
                f" on account {account.pk}"
            )
        if balance > MAX_BALANCE_MINOR or free_uses > MAX_COUNT or total_uses > MAX_COUNT:
            raise InvalidOperation("This would take the account past the largest balance or count it can hold.")
        gained_paid_credit |= m.balance_delta_minor > 0 and m.kind in PAID_CREDIT_KINDS
        entries.append(
            LedgerEntry(
                account=account,
                kind=m.kind,
                balance_delta_minor=m.balance_delta_minor,
                free_uses_delta=m.free_uses_delta,
                daily_free_uses_delta=m.daily_free_uses_delta,
                balance_after_minor=balance,
                free_uses_after=free_uses,
                daily_free_uses_after=daily,
                currency=account.currency,
                charge_id=m.charge_id,
                purchase=m.purchase,
                actor=actor,
                reason=m.reason,
                idempotency_key=m.idempotency_key,
                request_fingerprint=m.request_fingerprint,
                details=m.details or {},
            )
        )
    changes: dict[str, Any] = {
        "balance_minor": balance,
        "free_uses_remaining": free_uses,
        "daily_free_uses_remaining": daily,
        "total_uses": total_uses,
        "updated_at": timezone.now(),
    }
    if daily_free_uses_day is not None:
        changes["daily_free_uses_day"] = daily_free_uses_day
    if gained_paid_credit and not account.has_paid:
        changes["has_paid"] = True
    # Compare-and-set on the values the new balance was computed from: an account object
    # that was not locked (or is stale) fails loudly instead of overwriting newer money.
    expected = {field: getattr(account, field) for field in _GUARDED}
    if expected_status is not None:
        expected["status"] = expected_status
    written = write_movement(account=account, changes=changes, expected=expected, entries=entries, companion=companion)
    if written is None:
        raise StaleAccount(f"account {account.pk} changed since it was read: lock it with select_for_update() first")
    for field, value in changes.items():
        setattr(account, field, value)
    for m in movements:
        if m.balance_delta_minor > 0 or m.free_uses_delta > 0:
            # Counted once the money is really there: a rolled-back grant counts nothing.
            transaction.on_commit(
                partial(
                    metrics.observe_credits_granted,
                    kind=str(m.kind),
                    amount_minor=max(m.balance_delta_minor, 0),
                    free_uses=max(m.free_uses_delta, 0),
                )
            )
    return written  # type: ignore[return-value]


def ledger_record_drift(*, account_id: uuid.UUID | str, actor: str, reason: str) -> LedgerEntry | None:
    """Bring the ledger back in line with an account row that was changed outside it.

    `reconcile` reports an account whose balance (or free uses) differs from the sum of its
    ledger deltas: something wrote the row without an entry (an SQL edit, a bug). An entry
    posted through `ledger_post` cannot close that gap (it moves the row and the sum alike),
    so this writes one ADJUSTMENT entry whose deltas are exactly the unexplained difference
    and which leaves the row as it is: afterwards row and ledger agree, and the entry says
    who accepted the drift and why. To take the money back, post a normal adjustment after.
    Returns None when there is nothing to record. No balance changes here.
    """
    from django.db.models import Sum

    from accounts.models import Account

    if not reason.strip():
        raise LedgerInvariantError("A reason is required to record ledger drift.")
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_id)
        sums = LedgerEntry.objects.filter(account=account).aggregate(
            balance=Sum("balance_delta_minor"), free_uses=Sum("free_uses_delta"), daily=Sum("daily_free_uses_delta")
        )
        balance_drift = account.balance_minor - (sums["balance"] or 0)
        free_uses_drift = account.free_uses_remaining - (sums["free_uses"] or 0)
        daily_drift = account.daily_free_uses_remaining - (sums["daily"] or 0)
        if balance_drift == 0 and free_uses_drift == 0 and daily_drift == 0:
            return None
        return LedgerEntry.objects.create(
            account=account,
            kind=EntryKind.ADJUSTMENT,
            balance_delta_minor=balance_drift,
            free_uses_delta=free_uses_drift,
            daily_free_uses_delta=daily_drift,
            balance_after_minor=account.balance_minor,
            free_uses_after=account.free_uses_remaining,
            daily_free_uses_after=account.daily_free_uses_remaining,
            currency=account.currency,
            actor=actor,
            reason=reason,
            details={
                "drift": True,
                "ledger_balance_before": sums["balance"] or 0,
                "ledger_free_uses_before": sums["free_uses"] or 0,
            },
        )

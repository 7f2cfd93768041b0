"""The one function through which any balance or free-use count changes."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from billing_site import metrics
from billing_site.errors import InvalidOperation
from ledger.models import EntryKind, LedgerEntry

if TYPE_CHECKING:
    from accounts.models import Account
    from charges.models import Charge
    from purchases.models import Purchase

# Column limits: free uses and use counts are 32-bit, balances 64-bit.
MAX_COUNT = 2**31 - 1
MAX_BALANCE_MINOR = 2**63 - 1

# Paid credit arriving by these kinds makes the account "pro" (`Account.has_paid`).
PAID_CREDIT_KINDS = frozenset({EntryKind.PURCHASE, EntryKind.GRANT, EntryKind.MIGRATION})

# The account columns a movement is computed from: the UPDATE matches them, so a caller
# that forgot the lock (and holds a stale row) fails loudly instead of overwriting money.
_READ = ("balance_minor", "free_uses_remaining", "daily_free_uses_remaining", "daily_free_uses_day", "total_uses")


class LedgerInvariantError(Exception):
    """A movement would break the ledger's rules: a bug in the caller, never user input."""


@dataclass(frozen=True)
class Movement:
    """One ledger entry's worth of change, for `ledger_post_many`."""

    kind: EntryKind
    balance_delta_minor: int = 0
    free_uses_delta: int = 0
    daily_free_uses_delta: int = 0
    uses_delta: int = 0
    reason: str = ""
    charge: Charge | None = None
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
    """Apply one movement to a locked account and record it: `ledger_post_many` with one movement."""
    movement = Movement(
        kind=kind,
        balance_delta_minor=balance_delta_minor,
        free_uses_delta=free_uses_delta,
        daily_free_uses_delta=daily_free_uses_delta,
        uses_delta=uses_delta,
        reason=reason,
        charge=charge,
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
) -> list[LedgerEntry]:
    """Apply movements to a locked account, in the caller's transaction: one UPDATE of the
    account, one INSERT of its entries (a charge posts the day's top-up and the use together).

    The caller holds the row lock: `transaction.atomic()`, then
    `Account.objects.select_for_update().get(...)`, then this, with that row. The new counts
    are computed from it, so the row and its entries' `*_after` columns always agree.
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
                charge=m.charge,
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
    # With the lock held the row still has the values read; without it, they may have moved on.
    read = {field: getattr(account, field) for field in _READ}
    if type(account)._default_manager.filter(pk=account.pk, **read).update(**changes) != 1:
        raise LedgerInvariantError(
            f"account {account.pk} changed since it was read: lock it with select_for_update() first"
        )
    for field, value in changes.items():
        setattr(account, field, value)
    saved = LedgerEntry.objects.bulk_create(entries)
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
    return saved


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

"""The one function through which any balance or free-use count changes."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from billing_site import metrics
from billing_site.errors import InvalidOperation
from billing_site.sql import writer_for
from ledger.models import EntryKind, LedgerEntry

if TYPE_CHECKING:
    from accounts.models import Account
    from charges.models import Charge
    from purchases.models import Purchase

# Column limits: free uses and use counts are 32-bit, balances 64-bit.
MAX_COUNT = 2**31 - 1
MAX_BALANCE_MINOR = 2**63 - 1

# Paid credit arriving by these kinds makes the account "pro" (DESIGN: Money and units).
PAID_CREDIT_KINDS = frozenset({EntryKind.PURCHASE, EntryKind.GRANT, EntryKind.MIGRATION})


class LedgerInvariantError(Exception):
    """A movement would take a balance below zero: a bug in the caller, never user input."""


def ledger_post(
    *,
    account: Account,
    kind: EntryKind,
    actor: str,
    balance_delta_minor: int = 0,
    free_uses_delta: int = 0,
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
    if not transaction.get_connection().in_atomic_block:
        raise LedgerInvariantError("ledger_post must run inside transaction.atomic() with the account locked")
    new_balance = account.balance_minor + balance_delta_minor
    new_free_uses = account.free_uses_remaining + free_uses_delta
    new_total_uses = account.total_uses + uses_delta
    if new_balance < 0 or new_free_uses < 0:
        raise LedgerInvariantError(
            f"movement would leave balance {new_balance} / free uses {new_free_uses} on account {account.pk}"
        )
    if new_balance > MAX_BALANCE_MINOR or new_free_uses > MAX_COUNT or new_total_uses > MAX_COUNT:
        raise InvalidOperation("This would take the account past the largest balance or count it can hold.")
    changes: dict[str, Any] = {
        "balance_minor": new_balance,
        "free_uses_remaining": new_free_uses,
        "total_uses": new_total_uses,
        "updated_at": timezone.now(),
    }
    if balance_delta_minor > 0 and kind in PAID_CREDIT_KINDS and not account.has_paid:
        changes["has_paid"] = True
    # Compare-and-set on the values the new balance was computed from: an account object
    # that was not locked (or is stale) fails loudly instead of overwriting newer money.
    # The UPDATE is written once (billing_site.sql), not compiled by the ORM on every charge.
    updated = writer_for(type(account)).compare_and_set(
        account,
        changes,
        expected={
            "balance_minor": account.balance_minor,
            "free_uses_remaining": account.free_uses_remaining,
            "total_uses": account.total_uses,
        },
    )
    if updated != 1:
        raise LedgerInvariantError(
            f"account {account.pk} changed since it was read: lock it with select_for_update() first"
        )
    for field, value in changes.items():
        setattr(account, field, value)
    if balance_delta_minor > 0 or free_uses_delta > 0:
        # Counted once the money is really there: a rolled-back grant counts nothing.
        transaction.on_commit(
            partial(
                metrics.observe_credits_granted,
                kind=str(kind),
                amount_minor=max(balance_delta_minor, 0),
                free_uses=max(free_uses_delta, 0),
            )
        )
    entry = LedgerEntry(
        account=account,
        kind=kind,
        balance_delta_minor=balance_delta_minor,
        free_uses_delta=free_uses_delta,
        balance_after_minor=new_balance,
        free_uses_after=new_free_uses,
        currency=account.currency,
        charge=charge,
        purchase=purchase,
        actor=actor,
        reason=reason,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        details=details or {},
    )
    return writer_for(LedgerEntry).insert(entry)


def ledger_record_drift(*, account_id: object, actor: str, reason: str) -> LedgerEntry | None:
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
            balance=Sum("balance_delta_minor"), free_uses=Sum("free_uses_delta")
        )
        balance_drift = account.balance_minor - (sums["balance"] or 0)
        free_uses_drift = account.free_uses_remaining - (sums["free_uses"] or 0)
        if balance_drift == 0 and free_uses_drift == 0:
            return None
        return LedgerEntry.objects.create(
            account=account,
            kind=EntryKind.ADJUSTMENT,
            balance_delta_minor=balance_drift,
            free_uses_delta=free_uses_drift,
            balance_after_minor=account.balance_minor,
            free_uses_after=account.free_uses_remaining,
            currency=account.currency,
            actor=actor,
            reason=reason,
            details={
                "drift": True,
                "ledger_balance_before": sums["balance"] or 0,
                "ledger_free_uses_before": sums["free_uses"] or 0,
            },
        )

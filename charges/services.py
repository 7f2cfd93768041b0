"""Charging a use: daily free uses first, then free uses, then the paid balance; once per key."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from accounts.daily import daily_free_uses_on, daily_top_up_delta, utc_today
from accounts.identity import Identity
from accounts.models import Account, AccountStatus
from accounts.selectors import account_for_identity
from accounts.services import account_get_or_create, account_remember_last_seen
from billing_site.errors import (
    AccountInactive,
    IdempotencyMismatch,
    InsufficientCredits,
    insufficient_credits_detail,
)
from charges.models import Charge
from charges.selectors import charge_for_key
from ledger.models import EntryKind
from ledger.services import Movement, ledger_post_many

logger = logging.getLogger(__name__)

# Which pool paid a charge (recorded in its ledger entry's details as "paid_from").
DAILY, FREE, PAID = "daily_free_uses", "free_uses", "balance"


@dataclass(frozen=True)
class ChargeRequest:
    identity: Identity
    amount_minor: int
    currency: str
    idempotency_key: str
    actor: str
    description: str
    metadata: dict[str, Any]


def _log_charge(message: str, *, outcome: str, account_id: object, amount_minor: int, **fields: object) -> None:
    """A charge's money event, its one log line (account, amounts, outcome; never a key)."""
    logger.info(
        message,
        extra={"event": "charge", "outcome": outcome, "account_id": str(account_id), "amount_minor": amount_minor}
        | fields,
    )


def _replayed(existing: Charge, request: ChargeRequest) -> Charge:
    """The original charge for a key seen before; IdempotencyMismatch (422) if the request differs."""
    if (existing.amount_minor, existing.currency, existing.description) != (
        request.amount_minor,
        request.currency,
        request.description,
    ):
        _log_charge(
            "charge refused", outcome="mismatch", account_id=existing.account_id, amount_minor=request.amount_minor
        )
        raise IdempotencyMismatch(
            "This idempotency key was already used with a different amount, currency or description.",
            extra={"charge_id": str(existing.pk)},
        )
    _log_charge(
        "charge replayed", outcome="duplicate", account_id=existing.account_id, amount_minor=request.amount_minor
    )
    return existing


def charge_create(
    *,
    identity: Identity,
    amount_minor: int,
    currency: str,
    idempotency_key: str,
    actor: str,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[Charge, bool]:
    """Charge one use; returns (charge, created). created is False for a replay of the key.

    Spend order: a daily free use (BILLING_DAILY_FREE_USES), a free use, else `amount_minor`
    of the paid balance. Raises IdempotencyMismatch (422) for a key this account used with
    another amount, currency or description, InsufficientCredits (402), AccountInactive (403).

    Lock, then read: a replay is answered by one read of the charge (no lock); a new charge
    locks the account row, reads it, and posts the day's top-up (if due) and the use
    through the ledger. Two requests with one key serialize on that lock; the second's
    INSERT then meets the (account, key) unique constraint and answers the replay.
    """
    request = ChargeRequest(
        identity=identity,
        amount_minor=amount_minor,
        currency=currency,
        idempotency_key=idempotency_key,
        actor=actor,
        description=description,
        metadata=metadata or {},
    )
    existing = charge_for_key(identity=identity, idempotency_key=idempotency_key)
    if existing is not None:
        return _replayed(existing, request), False
    try:
        charge = _charge_locked(request)
        if charge is None:
            # First sight of this user: the account is made (and committed) as a credit
            # check would make it, so a refused charge still leaves it behind.
            account_get_or_create(identity=identity, actor=actor)
            charge = _charge_locked(request)
    except IntegrityError:
        # Another request with this key committed while we waited for the lock.
        existing = charge_for_key(identity=identity, idempotency_key=idempotency_key)
        if existing is None:
            raise
        return _replayed(existing, request), False
    if charge is None:  # the account was created and cannot be found: never expected
        raise Account.DoesNotExist(f"no account for {identity}")
    _log_charge(
        "charge created",
        outcome="free" if charge.paid_with_free_use else "ok",
        account_id=charge.account_id,
        amount_minor=amount_minor,
        charge_id=str(charge.pk),
        free_use=charge.paid_with_free_use,
        balance_after=charge.balance_after_minor,
    )
    return charge, True


def _charge_locked(request: ChargeRequest) -> Charge | None:
    """Lock the account, then read it and charge it; None when the identity has no account yet."""
    with transaction.atomic():
        account = account_for_identity(identity=request.identity, for_update=True)
        if account is None:
            return None
        account_remember_last_seen(account=account, identity=request.identity)
        return _charge(account, request, today=utc_today())


def _charge(account: Account, request: ChargeRequest, *, today: datetime.date) -> Charge:
    """Post the day's top-up (if due) and the charge against the locked `account`; record the charge."""
    if not account.is_active:
        outcome = "closed" if account.status == AccountStatus.CLOSED else "suspended"
        _log_charge("charge refused", outcome=outcome, account_id=account.pk, amount_minor=request.amount_minor)
        raise AccountInactive(
            account.inactive_reason or "Account inactive", extra={"status": account.status}, account_id=account.pk
        )
    movements = []
    top_up = daily_top_up_delta(account, today)
    if top_up is not None:
        movements.append(
            Movement(
                kind=EntryKind.DAILY_FREE_USES_GRANTED,
                daily_free_uses_delta=top_up,
                reason=f"Daily free uses for {today.isoformat()} (UTC)",
                details={"day": today.isoformat(), "expired": account.daily_free_uses_remaining},
            )
        )
    daily_delta = free_delta = balance_delta = 0
    if daily_free_uses_on(account, today) > 0:
        pool, daily_delta = DAILY, -1
    elif account.free_uses_remaining > 0:
        pool, free_delta = FREE, -1
    elif account.balance_minor >= request.amount_minor:
        pool, balance_delta = PAID, -request.amount_minor
    else:
        _log_charge("charge refused", outcome="insufficient", account_id=account.pk, amount_minor=request.amount_minor)
        raise InsufficientCredits(
            insufficient_credits_detail(balance_minor=account.balance_minor, required_minor=request.amount_minor),
            extra={"balance_minor": account.balance_minor, "required_minor": request.amount_minor},
            account_id=account.pk,
        )
    # Written first: a key already used fails here, before any other write.
    charge = Charge.objects.create(
        account=account,
        idempotency_key=request.idempotency_key,
        amount_minor=request.amount_minor,
        currency=request.currency,
        description=request.description,
        metadata=request.metadata,
        paid_with_free_use=pool != PAID,
        debited_minor=-balance_delta,
        balance_after_minor=account.balance_minor + balance_delta,
        free_uses_after=account.free_uses_remaining + free_delta,
        actor=request.actor,
    )
    movements.append(
        Movement(
            kind=EntryKind.CHARGE,
            balance_delta_minor=balance_delta,
            free_uses_delta=free_delta,
            daily_free_uses_delta=daily_delta,
            uses_delta=1,
            reason=request.description,
            charge=charge,
            details={"paid_from": pool},
        )
    )
    ledger_post_many(
        account=account,
        actor=request.actor,
        movements=movements,
        daily_free_uses_day=today if top_up is not None else None,
    )
    return charge

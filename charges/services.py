"""Charging a use: free uses first, then the paid balance; exactly once per key."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from accounts.identity import Identity
from accounts.services import account_remember_last_seen, lock_account
from billing_site.errors import (
    AccountInactive,
    DuplicateRequest,
    IdempotencyMismatch,
    InsufficientCredits,
    insufficient_credits_detail,
)
from billing_site.sql import writer_for
from charges.models import Charge
from charges.selectors import charge_for_key
from ledger.models import EntryKind
from ledger.services import ledger_post

logger = logging.getLogger(__name__)


def _raise_replay(existing: Charge, *, amount_minor: int, currency: str, description: str) -> None:
    """A key seen before: 409 with the original if the request matches it, else 422."""
    if (existing.amount_minor, existing.currency, existing.description) != (amount_minor, currency, description):
        raise IdempotencyMismatch(
            "This idempotency key was already used with a different amount, currency or description.",
            extra={"charge_id": str(existing.pk)},
        )
    raise DuplicateRequest(
        "Charge already exists for this idempotency key.",
        original=existing,
        headers={"X-Existing-Charge-ID": str(existing.pk)},
    )


def charge_create(
    *,
    identity: Identity,
    amount_minor: int,
    currency: str,
    idempotency_key: str,
    actor: str,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> Charge:
    """Charge one use: a free use while any remain, else `amount_minor` of the paid balance.

    Raises DuplicateRequest (409) for a key this account already used with the same
    request, IdempotencyMismatch (422) for one used with another, InsufficientCredits (402)
    and AccountInactive (403). The account row is locked before its balance is read.
    """
    existing = charge_for_key(identity, idempotency_key)
    if existing is not None:
        _raise_replay(existing, amount_minor=amount_minor, currency=currency, description=description)
    try:
        with transaction.atomic():
            account = lock_account(identity=identity, actor=actor)
            if not account.is_active:
                raise AccountInactive(
                    f"Account {account.status}", extra={"status": account.status}, account_id=account.pk
                )
            if account.free_uses_remaining > 0:
                free_uses_delta, balance_delta = -1, 0
            elif account.balance_minor >= amount_minor:
                free_uses_delta, balance_delta = 0, -amount_minor
            else:
                raise InsufficientCredits(
                    insufficient_credits_detail(balance_minor=account.balance_minor, required_minor=amount_minor),
                    extra={"balance_minor": account.balance_minor, "required_minor": amount_minor},
                    account_id=account.pk,
                )
            charge = Charge(
                account=account,
                idempotency_key=idempotency_key,
                amount_minor=amount_minor,
                currency=currency,
                description=description,
                metadata=metadata or {},
                paid_with_free_use=free_uses_delta != 0,
                debited_minor=-balance_delta,
                balance_after_minor=account.balance_minor + balance_delta,
                free_uses_after=account.free_uses_remaining + free_uses_delta,
                actor=actor,
            )
            writer_for(Charge).insert(charge)  # Charge.objects.create, minus the query compiling
            ledger_post(
                account=account,
                kind=EntryKind.CHARGE,
                balance_delta_minor=balance_delta,
                free_uses_delta=free_uses_delta,
                uses_delta=1,
                charge=charge,
                actor=actor,
                reason=description,
            )
    except IntegrityError:
        # Another request with this key committed while we waited for the lock.
        existing = charge_for_key(identity, idempotency_key)
        if existing is None:
            raise
        _raise_replay(existing, amount_minor=amount_minor, currency=currency, description=description)
    account_remember_last_seen(account, identity)
    logger.info(
        "charge created",
        extra={
            "event": "charge",
            "outcome": "free" if charge.paid_with_free_use else "ok",
            "account_id": str(account.pk),
            "charge_id": str(charge.pk),
            "amount_minor": amount_minor,
            "free_use": charge.paid_with_free_use,
            "balance_after": charge.balance_after_minor,
        },
    )
    return charge

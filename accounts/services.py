"""Writes to accounts: creation on first sight, grants, adjustments and status changes."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.identity import Identity, identity_of
from accounts.models import Account, AccountStatus
from accounts.selectors import account_for_identity
from billing_site.errors import IdempotencyMismatch, InvalidOperation
from ledger.models import EntryKind, LedgerEntry
from ledger.services import ledger_post

logger = logging.getLogger(__name__)


def account_remember_last_seen(*, account: Account, identity: Identity) -> None:
    """Record wa_id / email when they change: a cheap conditional write, not a money move."""
    changes = {}
    if identity.wa_id and identity.wa_id != account.wa_id:
        changes["wa_id"] = identity.wa_id
    if identity.email and identity.email != account.email:
        changes["email"] = identity.email
    if changes:
        Account.objects.filter(pk=account.pk).update(**changes)
        for field, value in changes.items():
            setattr(account, field, value)


def account_get_or_create(*, identity: Identity, actor: str) -> tuple[Account, bool]:
    """The account for this identity, made on first sight with the configured free uses.

    Race-safe: two first requests for one user both try the INSERT; the unique constraint
    lets one win and the other reads the winner's row.
    """
    account = account_for_identity(identity=identity)
    if account is not None:
        account_remember_last_seen(account=account, identity=identity)
        return account, False
    try:
        with transaction.atomic():
            account = Account.objects.create(
                tenant_id=identity.tenant_id,
                oauth_provider=identity.oauth_provider,
                external_id=identity.external_id,
                wa_id=identity.wa_id,
                email=identity.email,
                currency=settings.BILLING_CURRENCY,
            )
            if settings.BILLING_FREE_USES:
                ledger_post(
                    account=account,
                    kind=EntryKind.FREE_USES_GRANTED,
                    free_uses_delta=settings.BILLING_FREE_USES,
                    actor=actor,
                    reason="Free uses for a new account",
                )
    except IntegrityError:
        account = Account.objects.get(identity.lookup())
        account_remember_last_seen(account=account, identity=identity)
        return account, False
    logger.info("account created", extra={"account_id": str(account.pk), "actor": actor})
    return account, True


def lock_account(*, identity: Identity, actor: str) -> Account:
    """The identity's account, created if new, locked for the current transaction."""
    account = account_for_identity(identity=identity, for_update=True)
    if account is None:
        account_get_or_create(identity=identity, actor=actor)
        account = Account.objects.select_for_update().get(identity.lookup())
    return account


def uses_to_minor(uses: int) -> int:
    """Paid uses in credit minor units (BILLING_USE_PRICE_MINOR each)."""
    return uses * settings.BILLING_USE_PRICE_MINOR


def _fingerprint(**params: object) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def credits_grant(
    *,
    identity: Identity,
    actor: str,
    reason: str,
    amount_minor: int = 0,
    free_uses: int = 0,
    kind: EntryKind = EntryKind.GRANT,
    idempotency_key: str | None = None,
    description: str = "",
) -> tuple[LedgerEntry, bool]:
    """Grant (or, with kind=adjustment, correct) paid credit and/or free uses.

    Returns (entry, created). Idempotent on (account, idempotency_key): a replay returns
    the original entry with created False; the same key with other amounts raises
    IdempotencyMismatch. A closed account takes no new credit, only a settling adjustment.
    """
    if kind not in (EntryKind.GRANT, EntryKind.ADJUSTMENT, EntryKind.MIGRATION):
        raise InvalidOperation(f"Unsupported grant kind: {kind}")
    if amount_minor == 0 and free_uses == 0:
        raise InvalidOperation("A grant needs a non-zero amount_minor or free_uses.")
    if kind != EntryKind.ADJUSTMENT and (amount_minor < 0 or free_uses < 0):
        raise InvalidOperation("Grants must be positive; use an adjustment to take credit back.")
    if not reason.strip():
        raise InvalidOperation("A reason is required.")
    fingerprint = _fingerprint(
        kind=str(kind), amount_minor=amount_minor, free_uses=free_uses, reason=reason, description=description
    )
    try:
        with transaction.atomic():
            account = lock_account(identity=identity, actor=actor)
            if idempotency_key is not None:
                existing = _granted(account=account, idempotency_key=idempotency_key, fingerprint=fingerprint)
                if existing is not None:
                    return existing, False
            if not account.takes_new_credit and (amount_minor > 0 or free_uses > 0):
                raise InvalidOperation(
                    f"Account {account} is closed: it takes no new credit (a negative adjustment may settle it)."
                )
            if account.balance_minor + amount_minor < 0 or account.free_uses_remaining + free_uses < 0:
                raise InvalidOperation(
                    f"Adjustment would take the account below zero "
                    f"(balance {account.balance_minor}, free uses {account.free_uses_remaining})."
                )
            entry = ledger_post(
                account=account,
                kind=kind,
                balance_delta_minor=amount_minor,
                free_uses_delta=free_uses,
                actor=actor,
                reason=reason,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                details={"description": description} if description else None,
            )
    except IntegrityError:
        # A concurrent request with the same key committed first: report it as a replay.
        if idempotency_key is None:
            raise
        account = Account.objects.get(identity.lookup())
        existing = _granted(account=account, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing is None:
            raise
        return existing, False
    logger.info(
        "credits granted",
        extra={
            "account_id": str(account.pk),
            "amount_minor": amount_minor,
            "free_uses": free_uses,
            "kind": str(kind),
            "actor": actor,
        },
    )
    return entry, True


def account_grant(
    *,
    account: Account,
    actor: str,
    reason: str,
    amount_minor: int = 0,
    free_uses: int = 0,
    kind: EntryKind = EntryKind.GRANT,
    idempotency_key: str | None = None,
) -> tuple[LedgerEntry, bool]:
    """credits_grant for an account staff or a command already found; (entry, created) as there."""
    return credits_grant(
        identity=identity_of(account),
        actor=actor,
        reason=reason,
        amount_minor=amount_minor,
        free_uses=free_uses,
        kind=kind,
        idempotency_key=idempotency_key,
    )


def _granted(*, account: Account, idempotency_key: str, fingerprint: str) -> LedgerEntry | None:
    """The entry an earlier grant with this key made, or None; IdempotencyMismatch if it asked otherwise."""
    existing = LedgerEntry.objects.filter(account=account, idempotency_key=idempotency_key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise IdempotencyMismatch(
            "This idempotency key was already used with different parameters.",
            extra={"entry_id": existing.pk},
        )
    return existing


def account_set_status(*, account_id: uuid.UUID | str, status: AccountStatus, reason: str, actor: str) -> Account:
    """Suspend, reactivate or close an account, by the rules of `Account.status_change_refusal`.

    Checked on the locked row, not the caller's copy (which a form may have held a while);
    the move is recorded on the ledger (zero deltas) with who and why.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidOperation("A reason is required.")
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_id)
        refusal = account.status_change_refusal(status)
        if refusal is not None:
            raise InvalidOperation(refusal)
        previous = account.status
        account.status = status
        account.status_reason = reason
        account.save(update_fields=["status", "status_reason", "updated_at"])
        ledger_post(
            account=account,
            kind=EntryKind.STATUS_CHANGE,
            actor=actor,
            reason=reason,
            details={"from": previous, "to": str(status)},
        )
    # Said once the change is really there (a caller's outer transaction may still roll back).
    transaction.on_commit(
        lambda: logger.info(
            "account status changed",
            extra={"account_id": str(account.pk), "status": str(status), "actor": actor, "reason": reason},
        )
    )
    return account

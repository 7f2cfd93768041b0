"""Back-office writes: thin wrappers that name the staff user or command as the actor.

Nothing here touches a balance: grants go through `accounts.services.credits_grant`,
status changes through `accounts.services.account_set_status`, both of which post to the
ledger in one transaction with the account row locked.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.identity import Identity
from accounts.models import Account, AccountStatus
from accounts.services import account_set_status, credits_grant
from billing_site.errors import DuplicateRequest, InvalidOperation
from ledger.models import EntryKind, LedgerEntry


def identity_of(account: Account) -> Identity:
    return Identity(oauth_provider=account.oauth_provider, external_id=account.external_id, tenant_id=account.tenant_id)


def staff_actor(username: str) -> str:
    return f"staff:{username}"


def command_actor(name: str) -> str:
    return f"command:{name}"


def uses_to_minor(uses: int) -> int:
    return uses * settings.BILLING_USE_PRICE_MINOR


@dataclass(frozen=True)
class GrantOutcome:
    """What a grant did: a new entry, or (replayed=True) the entry an earlier submit made."""

    entry: LedgerEntry
    replayed: bool


def account_grant(
    *,
    account: Account,
    actor: str,
    reason: str,
    amount_minor: int = 0,
    free_uses: int = 0,
    kind: EntryKind = EntryKind.GRANT,
    idempotency_key: str | None = None,
) -> GrantOutcome:
    """Grant paid credit and/or free uses to an existing account; a replayed key is not an error.

    A closed account gets no new credit: only a negative adjustment, to settle it.

    A back-office resubmit (double click, browser back and submit, a re-run command) with
    the same key answers with the original entry instead of granting twice. A key reused
    with other amounts still raises IdempotencyMismatch.
    """
    try:
        # credits_grant locks the account, answers a resubmit with the original entry, and
        # refuses new credit to a closed account.
        entry = credits_grant(
            identity=identity_of(account),
            actor=actor,
            reason=reason,
            amount_minor=amount_minor,
            free_uses=free_uses,
            kind=kind,
            idempotency_key=idempotency_key,
        )
    except DuplicateRequest as duplicate:
        return GrantOutcome(entry=duplicate.original, replayed=True)
    return GrantOutcome(entry=entry, replayed=False)


# Which status changes make sense from which status (a closed account stays closed).
STATUS_TRANSITIONS: dict[str, set[str]] = {
    AccountStatus.SUSPENDED: {AccountStatus.ACTIVE},
    AccountStatus.ACTIVE: {AccountStatus.SUSPENDED},
    AccountStatus.CLOSED: {AccountStatus.ACTIVE, AccountStatus.SUSPENDED},
}


def account_change_status(*, account: Account, status: AccountStatus, reason: str, actor: str) -> Account:
    """Suspend, reactivate or close, refusing no-op and impossible moves with a clear message."""
    if not reason.strip():
        raise InvalidOperation("A reason is required.")
    with transaction.atomic():
        # Checked on the locked row, not the caller's copy (which a form may have held a while).
        current = Account.objects.select_for_update().get(pk=account.pk).status
        if current == status:
            raise InvalidOperation(f"Account {account} is already {current}.")
        if current not in STATUS_TRANSITIONS[status]:
            raise InvalidOperation(f"Account {account} is {current} and cannot become {status}.")
        return account_set_status(account_id=account.pk, status=status, reason=reason.strip(), actor=actor)

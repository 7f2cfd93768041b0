"""Back-office names for the account services, kept while the admin moves to accounts.services.

The writes themselves live in `accounts.services` (grants: `account_grant`/`credits_grant`,
status: `account_set_status`) and the status rules on `accounts.models.Account`. What is
left here is back-office wording: actor names, and the `GrantOutcome` the admin reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.identity import identity_of
from accounts.models import STATUS_TRANSITIONS, Account, AccountStatus
from accounts.services import account_grant as _account_grant
from accounts.services import account_set_status, uses_to_minor
from ledger.models import EntryKind, LedgerEntry

__all__ = ["STATUS_TRANSITIONS", "GrantOutcome", "account_change_status", "account_grant", "identity_of"]
__all__ += ["staff_actor", "uses_to_minor"]


def staff_actor(username: str) -> str:
    return f"staff:{username}"


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
    """accounts.services.account_grant, its (entry, created) as the admin's GrantOutcome."""
    entry, created = _account_grant(
        account=account,
        actor=actor,
        reason=reason,
        amount_minor=amount_minor,
        free_uses=free_uses,
        kind=kind,
        idempotency_key=idempotency_key,
    )
    return GrantOutcome(entry=entry, replayed=not created)


def account_change_status(*, account: Account, status: AccountStatus, reason: str, actor: str) -> Account:
    """accounts.services.account_set_status for an account object."""
    return account_set_status(account_id=account.pk, status=status, reason=reason, actor=actor)

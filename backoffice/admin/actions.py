"""The account actions of the back office, as one table: label, permission, form, service call.

Every action the admin offers on an account (its change page and the changelist's bulk
actions) is one row of ACCOUNT_ACTIONS. This is the only admin module that calls the
write services, so renaming a service is a change here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages

from accounts.models import Account, AccountStatus
from accounts.services import account_grant, account_set_status, uses_to_minor
from backoffice import forms
from backoffice.admin.base import GRANT_PERMISSION, SUSPEND_PERMISSION
from billing_site.admin_base import ReasonForm
from ledger.models import EntryKind, LedgerEntry

# What an action reports per account: the message and its level (django.contrib.messages).
Report = tuple[str, int]


@dataclass(frozen=True)
class AccountAction:
    name: str  # in the URL: /admin/accounts/account/<id>/actions/<name>/
    title: str
    permission: str
    form: type[ReasonForm]
    run: Callable[[Account, str, dict[str, Any]], Report]  # (account, actor, cleaned form data)
    target_status: AccountStatus | None = None  # set for status changes
    on_closed: bool = False  # offered on a closed account (only what may settle it)

    def refusal(self, account: Account) -> str | None:
        """Why this action cannot apply to the account (the account's own rules), or None."""
        if self.target_status is not None:
            return account.status_change_refusal(self.target_status)
        if not account.takes_new_credit and not self.on_closed:
            return f"Account {account} is closed: it gets no grants (an adjustment may still settle it)."
        return None


def staff_actor(username: str) -> str:
    return f"staff:{username}"


def _grant_report(account: Account, granted: tuple[LedgerEntry, bool], what: str) -> Report:
    entry, created = granted
    if not created:
        return (
            f"{account}: already granted by this form (ledger entry #{entry.pk}); nothing changed.",
            messages.WARNING,
        )
    return f"{account}: granted {what} (ledger entry #{entry.pk}).", messages.INFO


def _grant_credits(account: Account, actor: str, data: dict[str, Any]) -> Report:
    amount = data["amount"]
    amount_minor = uses_to_minor(amount) if data["unit"] == forms.GrantCreditsForm.UNIT_USES else amount
    granted = account_grant(
        account=account,
        actor=actor,
        reason=data["reason"],
        amount_minor=amount_minor,
        kind=EntryKind(data["kind"]),
        idempotency_key=data["idempotency_key"],
    )
    return _grant_report(account, granted, f"{amount_minor:+d} credit minor units")


def _grant_free_uses(account: Account, actor: str, data: dict[str, Any]) -> Report:
    granted = account_grant(
        account=account,
        actor=actor,
        reason=data["reason"],
        free_uses=data["free_uses"],
        idempotency_key=data["idempotency_key"],
    )
    return _grant_report(account, granted, f"{data['free_uses']} free uses")


def _status_action(name: str, title: str, status: AccountStatus) -> AccountAction:
    def run(account: Account, actor: str, data: dict[str, Any]) -> Report:
        account_set_status(account_id=account.pk, status=status, reason=data["reason"], actor=actor)
        return f"{account}: now {status.label.lower()}.", messages.INFO

    return AccountAction(name, title, SUSPEND_PERMISSION, ReasonForm, run, target_status=status)


ACCOUNT_ACTIONS: dict[str, AccountAction] = {
    action.name: action
    for action in (
        # grant-credits stays on a closed account: an adjustment may still settle it (the
        # service refuses its grants).
        AccountAction(
            "grant-credits", "Grant credits", GRANT_PERMISSION, forms.GrantCreditsForm, _grant_credits, on_closed=True
        ),
        AccountAction(
            "grant-free-uses", "Grant free uses", GRANT_PERMISSION, forms.GrantFreeUsesForm, _grant_free_uses
        ),
        _status_action("suspend", "Suspend", AccountStatus.SUSPENDED),
        _status_action("reactivate", "Reactivate", AccountStatus.ACTIVE),
        _status_action("close", "Close account", AccountStatus.CLOSED),
    )
}

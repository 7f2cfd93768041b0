"""What a reconciliation check reports: one finding, and the commands that would fix it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import Account
    from ledger.models import LedgerEntry
    from purchases.models import Purchase


@dataclass(frozen=True)
class Discrepancy:
    check: str
    subject: str
    detail: str
    fixes: list[str] = field(default_factory=list)


def purchase_grant_key(purchase: Purchase) -> str:
    """The idempotency key of a manual grant that stands in for a purchase's missing credit."""
    return f"purchase:{purchase.pk}"


def stripe_grant_key(payment_intent_id: str) -> str:
    """The idempotency key of a manual grant for a PaymentIntent we hold no purchase for."""
    return f"stripe:{payment_intent_id}"


def identity_args(account: Account) -> str:
    args = f"--provider {shlex.quote(account.oauth_provider)} --external-id {shlex.quote(account.external_id)}"
    if account.tenant_id:
        args += f" --tenant {shlex.quote(account.tenant_id)}"
    return args


def grant_command(account: Account, *, amount_minor: int, reason: str, key: str, adjustment: bool = False) -> str:
    kind = " --kind adjustment" if adjustment else ""
    return (
        f"manage.py grant_credits {identity_args(account)} --amount-minor {amount_minor}{kind} "
        f"--reason {shlex.quote(reason)} --idempotency-key {shlex.quote(key)}"
    )


def reverse_credit_command(entry: LedgerEntry, *, reason: str, check_first: str) -> str:
    """The adjustment that takes back a purchase credit, keyed by its entry: the purchase and
    the Stripe checks may both flag one entry, and their fixes must be one grant, not two."""
    return (
        grant_command(
            entry.account,
            amount_minor=-entry.balance_delta_minor,
            reason=reason,
            key=f"reconcile:reverse:{entry.pk}",
            adjustment=True,
        )
        + f"   # {check_first}"
    )

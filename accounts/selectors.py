"""Reads of account state, shaped for the guide's responses."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from accounts.identity import Identity
from accounts.models import Account, AccountStatus
from billing_site.errors import insufficient_credits_detail
from billing_site.sql import RowLoader, fetch_one, for_update_clause, table
from ledger.models import LedgerEntry

NO_CREDIT_REASON = "No free uses or credits remaining"


@dataclass(frozen=True)
class CreditStatus:
    """The guide's credit-check answer (every field always present)."""

    account: Account
    has_credit: bool
    reason: str | None
    purchase_required: bool

    @property
    def purchase_price_minor(self) -> int | None:
        return settings.BILLING_PACK_PRICE_MINOR if self.purchase_required else None

    @property
    def purchase_uses(self) -> int | None:
        return settings.BILLING_PACK_USES if self.purchase_required else None


def credit_status(*, account: Account, amount_minor: int | None = None) -> CreditStatus:
    """May this account pay for one more use of `amount_minor` (default: one use's price)?"""
    if account.status != AccountStatus.ACTIVE:
        reason = "Account suspended" if account.status == AccountStatus.SUSPENDED else "Account closed"
        return CreditStatus(account=account, has_credit=False, reason=reason, purchase_required=False)
    required = amount_minor or settings.BILLING_USE_PRICE_MINOR
    if account.free_uses_remaining > 0 or account.balance_minor >= required:
        return CreditStatus(account=account, has_credit=True, reason=None, purchase_required=False)
    if account.balance_minor > 0:
        reason = insufficient_credits_detail(balance_minor=account.balance_minor, required_minor=required)
    else:
        reason = NO_CREDIT_REASON
    return CreditStatus(account=account, has_credit=False, reason=reason, purchase_required=True)


def credit_status_result(status: CreditStatus) -> str:
    """The metrics label of a check: ok (paid credit), free, insufficient, suspended or closed."""
    account = status.account
    if account.status != AccountStatus.ACTIVE:
        return str(account.status)
    if not status.has_credit:
        return "insufficient"
    return "free" if account.free_uses_remaining > 0 else "ok"


_ACCOUNT = RowLoader(Account)


def account_for_identity(identity: Identity, *, for_update: bool = False) -> Account | None:
    """The identity's account (locked for the current transaction with for_update), or None.

    Plain SQL on the unique (tenant_id, oauth_provider, external_id) index: this runs on
    every credit check and charge (see billing_site.sql for why not the ORM here).
    """
    lock = for_update_clause() if for_update else ""
    return fetch_one(
        _ACCOUNT,
        f"SELECT {{columns}} FROM {table(Account)} t"
        f" WHERE t.tenant_id = %s AND t.oauth_provider = %s AND t.external_id = %s{lock}",
        [identity.tenant_id, identity.oauth_provider, identity.external_id],
    )


def accounts_visible_to(*, tenant_id: str) -> QuerySet[Account]:
    """Accounts a caller may see: a tenant-bound key sees only its tenant's."""
    queryset = Account.objects.all()
    return queryset.filter(tenant_id=tenant_id) if tenant_id else queryset


def account_ledger(*, account: Account) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(account=account).order_by("-id")

"""Reads of account state, shaped for the guide's responses."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from accounts.daily import daily_free_uses_limit, daily_free_uses_on, utc_today
from accounts.identity import Identity
from accounts.models import Account
from billing_site.errors import insufficient_credits_detail
from ledger.models import LedgerEntry

NO_CREDIT_REASON = "No free uses or credits remaining"


@dataclass(frozen=True)
class CreditStatus:
    """The guide's credit-check answer (every field always present), plus the daily pool.

    The use counts are what the account may use now: all 0 for a suspended or closed
    account, because the CIRIS agent ignores has_credit and decides from the counts.
    """

    account: Account
    has_credit: bool
    reason: str | None
    purchase_required: bool
    credits_remaining: int
    free_uses_remaining: int
    daily_free_uses_remaining: int
    daily_free_uses_limit: int

    @property
    def purchase_price_minor(self) -> int | None:
        return settings.BILLING_PACK_PRICE_MINOR if self.purchase_required else None

    @property
    def purchase_uses(self) -> int | None:
        return settings.BILLING_PACK_USES if self.purchase_required else None

    @property
    def result(self) -> str:
        """The metrics label: ok (paid credit), free (a free use), insufficient, suspended or closed."""
        if not self.account.is_active:
            return str(self.account.status)
        if not self.has_credit:
            return "insufficient"
        return "free" if self.free_uses_remaining or self.daily_free_uses_remaining else "ok"


def credit_status(
    *, account: Account, amount_minor: int | None = None, today: datetime.date | None = None
) -> CreditStatus:
    """May this account pay for one more use of `amount_minor` (default: one use's price)?

    Reads only: a day's daily top-up not yet written shows here as the full allowance.
    """
    limit = daily_free_uses_limit()
    if not account.is_active:
        return CreditStatus(
            account=account,
            has_credit=False,
            reason=account.inactive_reason,
            purchase_required=False,
            credits_remaining=0,
            free_uses_remaining=0,
            daily_free_uses_remaining=0,
            daily_free_uses_limit=limit,
        )
    daily = daily_free_uses_on(account, today or utc_today())
    required = amount_minor or settings.BILLING_USE_PRICE_MINOR
    has_credit = daily > 0 or account.free_uses_remaining > 0 or account.balance_minor >= required
    if has_credit:
        reason = None
    elif account.balance_minor > 0:
        reason = insufficient_credits_detail(balance_minor=account.balance_minor, required_minor=required)
    else:
        reason = NO_CREDIT_REASON
    return CreditStatus(
        account=account,
        has_credit=has_credit,
        reason=reason,
        purchase_required=not has_credit,
        credits_remaining=account.credits_remaining,
        free_uses_remaining=account.free_uses_remaining,
        daily_free_uses_remaining=daily,
        daily_free_uses_limit=limit,
    )


# The credit check's one read, on the unique (tenant_id, oauth_provider, external_id) index.
# Written out because building the same QuerySet costs more instructions than the rest of a
# check (docs/performance.md); `raw()` still builds the Account as the ORM does.
ACCOUNT_BY_IDENTITY_SQL = (
    "SELECT * FROM accounts_account WHERE tenant_id = %s AND oauth_provider = %s AND external_id = %s"
)


def account_for_identity(*, identity: Identity, for_update: bool = False) -> Account | None:
    """The identity's account (locked for the current transaction with for_update), or None."""
    if for_update:
        return next(iter(Account.objects.filter(identity.lookup()).order_by().select_for_update()[:1]), None)
    params = [identity.tenant_id, identity.oauth_provider, identity.external_id]
    return next(iter(Account.objects.raw(ACCOUNT_BY_IDENTITY_SQL, params)), None)


def accounts_visible_to(*, tenant_id: str) -> QuerySet[Account]:
    """Accounts a caller may see: a tenant-bound key sees only its tenant's."""
    queryset = Account.objects.all()
    return queryset.filter(tenant_id=tenant_id) if tenant_id else queryset


def account_ledger(*, account: Account) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(account=account).order_by("-id")

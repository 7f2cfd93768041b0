"""Reads of tool credits: what an account may use now, without writing anything.

A read applies the allowance rules to what is stored (an account or allowance not made yet
gets the initial allowance, a new UTC day its top-up), so it answers what the next charge
would find; only a charge or a grant writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.identity import Identity
from accounts.models import Account
from accounts.selectors import account_for_identity
from tools.allowance import daily_topup, paid_uses, utc_today
from tools.models import ToolAllowance, ToolCharge, ToolProduct


@dataclass(frozen=True)
class ToolBalance:
    """paid_credits: uses of this tool the paid balance buys (balance ÷ price_minor);
    main_pool_credits: the account's credits_remaining (balance ÷ one use's price), the
    pool both tools and interactions draw on; purchased_remaining: uses bought in store
    packs. total_available = free + purchased + paid_credits."""

    product_type: str
    free_remaining: int
    paid_credits: int
    main_pool_credits: int
    price_minor: int
    total_uses: int
    purchased_remaining: int = 0

    @property
    def total_available(self) -> int:
        return self.free_remaining + self.purchased_remaining + self.paid_credits

    @property
    def has_credit(self) -> bool:
        return self.total_available > 0


def active_products() -> QuerySet[ToolProduct]:
    return ToolProduct.objects.filter(active=True).order_by("product_type")


def product_for(product_type: str) -> ToolProduct | None:
    return active_products().filter(product_type=product_type).first()


def tool_charge_for_key(identity: Identity, idempotency_key: str) -> ToolCharge | None:
    return (
        ToolCharge.objects.select_related("product")
        .filter(identity.lookup("account__"), idempotency_key=idempotency_key)
        .first()
    )


def free_remaining_now(*, allowance: ToolAllowance | None, product: ToolProduct) -> int:
    """The allowance as the next use would find it (initial if none, plus today's top-up)."""
    if allowance is None:
        return product.free_initial
    if allowance.topped_up_on < utc_today():
        return allowance.free_remaining + daily_topup(product=product, free_remaining=allowance.free_remaining)
    return allowance.free_remaining


def _balance(*, account: Account | None, product: ToolProduct, allowance: ToolAllowance | None) -> ToolBalance:
    total_uses = allowance.total_uses if allowance is not None else 0
    price = product.effective_price_minor
    if account is not None and not account.is_active:
        # Inactive accounts report nothing usable (the stored numbers stay in the admin).
        return ToolBalance(product.product_type, 0, 0, 0, price, total_uses)
    balance_minor = account.balance_minor if account is not None else 0
    return ToolBalance(
        product_type=product.product_type,
        free_remaining=free_remaining_now(allowance=allowance, product=product),
        paid_credits=paid_uses(balance_minor=balance_minor, product=product),
        main_pool_credits=account.credits_remaining if account is not None else 0,
        price_minor=price,
        total_uses=total_uses,
        purchased_remaining=allowance.purchased_remaining if allowance is not None else 0,
    )


def tool_balance(*, identity: Identity, product: ToolProduct) -> ToolBalance:
    account = account_for_identity(identity=identity)
    allowance = None
    if account is not None:
        allowance = ToolAllowance.objects.filter(account=account, product=product).first()
    return _balance(account=account, product=product, allowance=allowance)


def tool_balances(*, identity: Identity) -> list[ToolBalance]:
    """One balance per active product, in two queries whatever the number of products."""
    account = account_for_identity(identity=identity)
    allowances: dict[int, ToolAllowance] = {}
    if account is not None:
        allowances = {a.product_id: a for a in ToolAllowance.objects.filter(account=account, product__active=True)}
    return [
        _balance(account=account, product=product, allowance=allowances.get(product.pk))
        for product in active_products()
    ]

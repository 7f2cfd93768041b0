"""The allowance rules, shared by the writes (services) and the reads (selectors)."""

from __future__ import annotations

from accounts.daily import utc_today
from tools.models import ToolProduct

__all__ = ["daily_topup", "paid_uses", "utc_today"]


def daily_topup(*, product: ToolProduct, free_remaining: int) -> int:
    """Free uses a new UTC day adds: the daily amount, never above the cap (nor below zero)."""
    return max(0, min(product.free_daily_topup, product.free_cap - free_remaining))


def paid_uses(*, balance_minor: int, product: ToolProduct) -> int:
    """Whole uses of the product the paid balance buys."""
    return balance_minor // product.effective_price_minor

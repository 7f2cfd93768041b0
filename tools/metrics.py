"""Prometheus counters of tool uses (see billing_site.metrics for the conventions).

Labels stay bounded: `product` is a product that exists (staff add them) or "unknown";
`result` is one of TOOL_CHARGE_RESULTS. Counted after the transaction ended.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from billing_site.errors import AccountInactive, BillingError, IdempotencyMismatch, InsufficientCredits
from tools.errors import UnknownProduct

logger = logging.getLogger("billing.events")

TOOL_CHARGE_RESULTS = ("free", "paid", "duplicate", "insufficient", "suspended", "closed", "mismatch", "refused")

TOOL_CHARGES = Counter(
    "billing_tool_charges",
    "Tool charges by product and result: free (the free allowance), paid (the paid balance), duplicate "
    "(a retry answered with the original), insufficient (402), suspended/closed (403), mismatch (422: key "
    "used for another product), refused (any other refusal, e.g. an unknown product).",
    ["product", "result"],
)
TOOL_CHARGED_MINOR = Counter(
    "billing_tool_charged_minor",
    "Credit minor units debited from paid balances by tool charges, by product.",
    ["product"],
)
TOOL_FREE_GRANTED = Counter(
    "billing_tool_free_uses_granted",
    "Free tool uses added to allowances, by product and source (initial, daily, staff).",
    ["product", "source"],
)


def observe_tool_charge(*, product: str, result: str, cost_minor: int = 0) -> None:
    TOOL_CHARGES.labels(product=product, result=result).inc()
    if cost_minor:
        TOOL_CHARGED_MINOR.labels(product=product).inc(cost_minor)


def observe_tool_refusal(error: BillingError, *, product: str) -> None:
    """Count (and log) a refused tool charge; an unknown product is counted as "unknown"."""
    if isinstance(error, UnknownProduct):
        product, result = "unknown", "refused"
    elif isinstance(error, InsufficientCredits):
        result = "insufficient"
    elif isinstance(error, AccountInactive):
        result = "closed" if error.extra.get("status") == "closed" else "suspended"
    elif isinstance(error, IdempotencyMismatch):
        result = "mismatch"
    else:
        result = "refused"
    observe_tool_charge(product=product, result=result)
    logger.info(
        "tool charge refused",
        extra={
            "event": "tool_charge",
            "outcome": result,
            "product": product,
            "account_id": str(error.account_id) if error.account_id else None,
        },
    )


def observe_tool_grant(*, product: str, source: str, free_uses: int) -> None:
    TOOL_FREE_GRANTED.labels(product=product, source=source).inc(free_uses)

"""Refusals of the tool-credit services (mapped to HTTP by billing_site.exceptions)."""

from __future__ import annotations

from billing_site.errors import BillingError, InsufficientCredits


class UnknownProduct(BillingError):
    """No active product of that type: a 422 naming the field, like any validation error."""

    status_code = 422
    code = "validation_error"

    def __init__(self, product_type: str):
        message = f"Unknown or inactive product: {product_type}"
        super().__init__(f"product_type: {message}", extra={"errors": {"product_type": [message]}})


class ToolCreditsExhausted(InsufficientCredits):
    """No free use left and the paid balance does not cover the price (402)."""


def tool_credits_detail(*, product_type: str, balance_minor: int, price_minor: int) -> str:
    return f"No {product_type} credits available. Balance: {balance_minor}, Required: {price_minor}"

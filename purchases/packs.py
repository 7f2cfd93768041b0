"""What a purchase buys: packs of uses, priced from the BILLING_* settings."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from billing_site.errors import InvalidOperation

MAX_QUANTITY = 50


@dataclass(frozen=True)
class Pack:
    """What one purchase buys, fixed at purchase time from the BILLING_* settings."""

    quantity: int
    uses: int
    price_minor: int
    currency: str
    credit_minor: int


def pack_for(*, quantity: int = 1) -> Pack:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidOperation(f"quantity must be between 1 and {MAX_QUANTITY}.")
    uses = settings.BILLING_PACK_USES * quantity
    return Pack(
        quantity=quantity,
        uses=uses,
        price_minor=settings.BILLING_PACK_PRICE_MINOR * quantity,
        currency=settings.BILLING_CURRENCY,
        credit_minor=uses * settings.BILLING_USE_PRICE_MINOR,
    )

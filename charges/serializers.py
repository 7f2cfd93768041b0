"""Input and output shapes of the charge endpoint (pydantic: the hot path)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.conf import settings
from pydantic import ConfigDict, Field

from accounts.serializers import IdentityBody
from billing_site.api import ApiModel
from billing_site.fields import Amount, Currency, Description, Identifier, Metadata


def _billing_currency() -> str:
    return str(settings.BILLING_CURRENCY)


class ChargeIn(IdentityBody):
    amount_minor: Amount = Field(description="Credit units to charge (100 = one use by default).")
    currency: Currency = Field(default_factory=_billing_currency, description="Defaults to the service's currency.")
    description: Description | None = None
    idempotency_key: Identifier = Field(description="Unique per charge, e.g. msg-{message_id}; a retry reuses it.")
    metadata: Metadata = None


class ChargeOut(ApiModel):
    """A charge as its caller reads it: the 201, and the body of a 409 replay."""

    model_config = ConfigDict(from_attributes=True)

    charge_id: uuid.UUID = Field(validation_alias="id")
    account_id: uuid.UUID
    amount_minor: int
    currency: str
    balance_after: int = Field(validation_alias="balance_after_minor", description="Paid balance in minor units.")
    created_at: datetime.datetime
    description: str
    metadata: Any
    idempotency_key: str
    paid_with_free_use: bool
    free_uses_remaining: int = Field(validation_alias="free_uses_after")

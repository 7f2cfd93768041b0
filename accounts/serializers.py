"""Input and output shapes of the account, credit-check and grant endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ConfigDict, Field
from rest_framework import serializers

from accounts.models import Account
from accounts.selectors import CreditStatus
from billing_site.api import ApiModel
from billing_site.fields import (
    MAX_AMOUNT_MINOR,
    Amount,
    CurrencyField,
    Identifier,
    LenientEmail,
    LenientEmailField,
    OptionalIdentifier,
    StrictIntegerField,
    amount_field,
    description_field,
    identifier,
    optional_identifier,
)
from ledger.models import EntryKind, LedgerEntry


class IdentityBody(ApiModel):
    """The guide's identity block, for the hot endpoints (check, charge), as a pydantic model:
    strict JSON types, and fields the guide does not list are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    oauth_provider: Identifier = Field(description='OAuth provider, e.g. "oauth:google".')
    external_id: Identifier = Field(description="The user's email or OAuth id.")
    wa_id: OptionalIdentifier | None = Field(None, description="WebAgent id; recorded, not part of identity.")
    tenant_id: OptionalIdentifier | None = Field(None, description="Tenant (B2B); part of identity.")
    customer_email: LenientEmail = Field("", description="Recorded on the account when it is a valid email.")


def _described(name: str) -> str | None:
    return IdentityBody.model_fields[name].description


class IdentityIn(serializers.Serializer):
    """The same identity block for the other endpoints, as a DRF serializer (same limits and
    descriptions, from billing_site.fields and IdentityBody)."""

    oauth_provider = identifier(help_text=_described("oauth_provider"))
    external_id = identifier(help_text=_described("external_id"))
    wa_id = optional_identifier(help_text=_described("wa_id"))
    tenant_id = optional_identifier(help_text=_described("tenant_id"))
    customer_email = LenientEmailField(help_text=_described("customer_email"))


class CreditCheckIn(IdentityBody):
    amount_minor: Amount | None = Field(
        None, description="Price of the coming use, if not one use's price; has_credit answers for it."
    )
    context: Any = Field(None, description="Free-form context; ignored.")


class CreditCheckOut(ApiModel):
    """The check's answer: every guide field, always."""

    has_credit: bool
    credits_remaining: int = Field(description="Paid balance in uses (0 when suspended or closed).")
    free_uses_remaining: int = Field(description="0 when suspended or closed.")
    daily_free_uses_remaining: int = Field(
        description="Today's (UTC) daily free uses left, spent first (0 when off, suspended or closed)."
    )
    daily_free_uses_limit: int = Field(description="Daily free uses per UTC day (0 when off).")
    total_uses: int
    plan_name: str
    reason: str | None
    purchase_required: bool
    purchase_price_minor: int | None
    purchase_uses: int | None
    account_id: uuid.UUID
    balance_minor: int = Field(description="The stored paid balance.")

    @classmethod
    def of(cls, status: CreditStatus) -> CreditCheckOut:
        account = status.account
        return cls(
            has_credit=status.has_credit,
            credits_remaining=status.credits_remaining,
            free_uses_remaining=status.free_uses_remaining,
            daily_free_uses_remaining=status.daily_free_uses_remaining,
            daily_free_uses_limit=status.daily_free_uses_limit,
            total_uses=account.total_uses,
            plan_name=account.plan_name,
            reason=status.reason,
            purchase_required=status.purchase_required,
            purchase_price_minor=status.purchase_price_minor,
            purchase_uses=status.purchase_uses,
            account_id=account.id,
            balance_minor=account.balance_minor,
        )


class NullIfBlankCharField(serializers.CharField):
    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return value or None


class AccountOut(serializers.ModelSerializer):
    account_id = serializers.UUIDField(source="id")
    wa_id = NullIfBlankCharField()
    tenant_id = NullIfBlankCharField()
    plan_name = serializers.CharField()
    credits_remaining = serializers.IntegerField()

    class Meta:
        model = Account
        fields = [
            "account_id",
            "oauth_provider",
            "external_id",
            "wa_id",
            "tenant_id",
            "status",
            "plan_name",
            "free_uses_remaining",
            "credits_remaining",
            "balance_minor",
            "currency",
            "total_uses",
            "created_at",
        ]


class LedgerEntryOut(serializers.ModelSerializer):
    entry_id = serializers.IntegerField(source="id")
    account_id = serializers.UUIDField()
    charge_id = serializers.UUIDField(allow_null=True)
    purchase_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "entry_id",
            "account_id",
            "kind",
            "balance_delta_minor",
            "free_uses_delta",
            "balance_after_minor",
            "free_uses_after",
            "daily_free_uses_delta",
            "daily_free_uses_after",
            "currency",
            "charge_id",
            "purchase_id",
            "actor",
            "reason",
            "created_at",
        ]


class CreditGrantIn(IdentityIn):
    amount_minor = amount_field(
        min_value=-MAX_AMOUNT_MINOR, required=False, default=0, help_text="Paid credit in minor units."
    )
    free_uses = StrictIntegerField(min_value=-(10**6), max_value=10**6, required=False, default=0)
    currency = CurrencyField()
    kind = serializers.ChoiceField(
        choices=[EntryKind.GRANT.value, EntryKind.ADJUSTMENT.value],
        default=EntryKind.GRANT.value,
        help_text="grant (positive only) or adjustment (either sign, never below zero).",
    )
    description = description_field()
    reason = description_field(required=True, allow_blank=False, allow_null=False)
    idempotency_key = identifier()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("amount_minor") and not attrs.get("free_uses"):
            raise serializers.ValidationError("Give a non-zero amount_minor and/or free_uses.")
        if attrs["kind"] == EntryKind.GRANT and (attrs["amount_minor"] < 0 or attrs["free_uses"] < 0):
            raise serializers.ValidationError("A grant must be positive; use kind=adjustment to take credit back.")
        return attrs

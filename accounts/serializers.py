"""Input and output shapes of the account, credit-check and grant endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Account
from billing_site.fields import (
    MAX_AMOUNT_MINOR,
    CurrencyField,
    LenientEmailField,
    StrictIntegerField,
    amount_field,
    description_field,
    identifier,
    optional_identifier,
)
from ledger.models import EntryKind, LedgerEntry


class IdentityIn(serializers.Serializer):
    """The guide's identity block. Fields the guide does not list are ignored."""

    oauth_provider = identifier(help_text='OAuth provider, e.g. "oauth:google".')
    external_id = identifier(help_text="The user's email or OAuth id.")
    wa_id = optional_identifier(help_text="WebAgent id; recorded, not part of identity.")
    tenant_id = optional_identifier(help_text="Tenant (B2B); part of identity.")
    customer_email = LenientEmailField(help_text="Recorded on the account when it is a valid email.")


class CreditCheckIn(IdentityIn):
    amount_minor = amount_field(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="Price of the coming use, if not one use's price; has_credit answers for it.",
    )
    # The body's "context" field (DRF moves declared fields off the class; the stubs do not know).
    context = serializers.JSONField(  # type: ignore[assignment]
        required=False, allow_null=True, help_text="Free-form context; ignored."
    )


class CreditCheckOut(serializers.Serializer):
    """The check's answer, from a CreditStatus (accounts.selectors): every guide field, always."""

    has_credit = serializers.BooleanField()
    credits_remaining = serializers.IntegerField(help_text="Paid balance in uses (0 when suspended or closed).")
    free_uses_remaining = serializers.IntegerField(help_text="0 when suspended or closed.")
    daily_free_uses_remaining = serializers.IntegerField(
        help_text="Today's (UTC) daily free uses left, spent first (0 when off, suspended or closed)."
    )
    daily_free_uses_limit = serializers.IntegerField(help_text="Daily free uses per UTC day (0 when off).")
    total_uses = serializers.IntegerField(source="account.total_uses")
    plan_name = serializers.CharField(source="account.plan_name")
    reason = serializers.CharField(allow_null=True)
    purchase_required = serializers.BooleanField()
    purchase_price_minor = serializers.IntegerField(allow_null=True)
    purchase_uses = serializers.IntegerField(allow_null=True)
    account_id = serializers.UUIDField(source="account.id")
    balance_minor = serializers.IntegerField(source="account.balance_minor", help_text="The stored paid balance.")


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

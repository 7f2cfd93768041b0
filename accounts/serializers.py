"""Input and output shapes of the account, credit-check and grant endpoints."""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings
from rest_framework import serializers

from accounts.models import Account
from billing_site.fields import (
    MAX_AMOUNT_MINOR,
    LenientEmailField,
    StrictIntegerField,
    TextField,
    amount_field,
    identifier,
    is_storable_text,
    optional_identifier,
)
from ledger.models import EntryKind, LedgerEntry


class ShallowFieldsMixin:
    """Copy declared fields shallowly for each serializer instance.

    DRF deep-copies every declared field per instance by re-running each field's
    __init__ (about 0.1 ms a field; a third of a charge's Python time). These input
    serializers hold only flat scalar fields whose state is set at declaration and not
    changed by validation, so a shallow copy per instance (then bound to it as usual)
    is equivalent. Not for serializers with nested serializers.
    """

    _declared_fields: dict[str, serializers.Field]

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class IdentityIn(ShallowFieldsMixin, serializers.Serializer):
    """The guide's identity block. Fields the guide does not list are ignored."""

    oauth_provider = identifier(help_text='OAuth provider, e.g. "oauth:google".')
    external_id = identifier(help_text="The user's email or OAuth id.")
    wa_id = optional_identifier(help_text="WebAgent id; recorded, not part of identity.")
    tenant_id = optional_identifier(help_text="Tenant (B2B); part of identity.")
    customer_email = LenientEmailField(help_text="Recorded on the account when it is a valid email.")


class CurrencyField(TextField):
    default_error_messages = {"unsupported": "Unsupported currency {value}: this service bills in {currency}."}

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).upper()
        if value != settings.BILLING_CURRENCY:
            self.fail("unsupported", value=value, currency=settings.BILLING_CURRENCY)
        return value


class CreditCheckIn(IdentityIn):
    amount_minor = amount_field(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="Price of the coming use, if not one use's price; has_credit answers for it.",
    )
    context = serializers.JSONField(required=False, allow_null=True, help_text="Free-form context; ignored.")


_EMAIL = LenientEmailField()
_IDENTIFIERS = ("oauth_provider", "external_id")
_OPTIONAL_IDENTIFIERS = ("wa_id", "tenant_id")


def plain_text(value: object, *, allow_blank: bool, max_length: int = 255) -> bool:
    """A string a TextField would keep exactly as it is (no trimming, no error)."""
    if not isinstance(value, str) or len(value) > max_length or value != value.strip():
        return False
    if not value and not allow_blank:
        return False
    return is_storable_text(value)


def identity_in_fast(data: object) -> dict[str, Any] | None:
    """IdentityIn's validated_data for plain input, or None (see credit_check_in_fast)."""
    if not isinstance(data, dict):
        return None
    out: dict[str, Any] = {}
    for name in _IDENTIFIERS:
        value = data.get(name)
        if not plain_text(value, allow_blank=False):
            return None
        out[name] = value
    for name in _OPTIONAL_IDENTIFIERS:
        if name in data:
            value = data[name]
            if value is not None and not plain_text(value, allow_blank=True):
                return None
            out[name] = value
    if "customer_email" in data:
        email = data["customer_email"]
        if email is None or (isinstance(email, str) and not email.strip()):
            out["customer_email"] = None if email is None else ""
        else:
            out["customer_email"] = _EMAIL.to_internal_value(email)
    return out


def credit_check_in_fast(data: object) -> dict[str, Any] | None:
    """CreditCheckIn's validated_data for the ordinary request, or None to use CreditCheckIn.

    The credit check is the hottest endpoint and DRF's validation a fifth of its time.
    This accepts only input the serializer would take unchanged (plain strings within
    limits, a JSON integer in range, any context) and returns what the serializer returns;
    everything else (errors, trimming, odd types) goes to the serializer, so answers and
    error messages stay the serializer's. tests/test_fast_paths.py compares the two.
    """
    out = identity_in_fast(data)
    if out is None:
        return None
    if "amount_minor" in data:
        amount = data["amount_minor"]
        if amount is not None and (
            isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT_MINOR
        ):
            return None
        out["amount_minor"] = amount
    if "context" in data:
        out["context"] = data["context"]
    return out


class CreditCheckOut(serializers.Serializer):
    has_credit = serializers.BooleanField()
    credits_remaining = serializers.IntegerField(source="account.credits_remaining", help_text="Paid balance in uses.")
    free_uses_remaining = serializers.IntegerField(source="account.free_uses_remaining")
    total_uses = serializers.IntegerField(source="account.total_uses")
    plan_name = serializers.CharField(source="account.plan_name")
    reason = serializers.CharField(allow_null=True)
    purchase_required = serializers.BooleanField()
    purchase_price_minor = serializers.IntegerField(allow_null=True)
    purchase_uses = serializers.IntegerField(allow_null=True)
    account_id = serializers.UUIDField(source="account.id")
    balance_minor = serializers.IntegerField(source="account.balance_minor")


def credit_check_out(status: Any) -> dict[str, Any]:
    """CreditCheckOut's data, built directly (the hottest endpoint; tests/test_fast_paths.py
    keeps the two identical)."""
    account = status.account
    return {
        "has_credit": status.has_credit,
        "credits_remaining": account.credits_remaining,
        "free_uses_remaining": account.free_uses_remaining,
        "total_uses": account.total_uses,
        "plan_name": account.plan_name,
        "reason": status.reason,
        "purchase_required": status.purchase_required,
        "purchase_price_minor": status.purchase_price_minor,
        "purchase_uses": status.purchase_uses,
        "account_id": str(account.id),
        "balance_minor": account.balance_minor,
    }


class NullIfBlankCharField(serializers.CharField):
    def to_representation(self, value: Any) -> str | None:
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
    description = TextField(max_length=1000, required=False, allow_blank=True, allow_null=True)
    reason = TextField(max_length=1000)
    idempotency_key = identifier()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("amount_minor") and not attrs.get("free_uses"):
            raise serializers.ValidationError("Give a non-zero amount_minor and/or free_uses.")
        if attrs["kind"] == EntryKind.GRANT and (attrs["amount_minor"] < 0 or attrs["free_uses"] < 0):
            raise serializers.ValidationError("A grant must be positive; use kind=adjustment to take credit back.")
        return attrs

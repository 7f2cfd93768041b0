"""Input and output shapes of the charge endpoint."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.conf import settings
from rest_framework import serializers

from accounts.serializers import CurrencyField, IdentityIn, identity_in_fast, plain_text
from billing_site.fields import MAX_AMOUNT_MINOR, MetadataField, TextField, amount_field, identifier
from charges.models import Charge


class ChargeIn(IdentityIn):
    amount_minor = amount_field(min_value=1, help_text="Credit units to charge (100 = one use by default).")
    currency = CurrencyField(help_text="Defaults to the service's currency.")
    description = TextField(max_length=1000, required=False, allow_blank=True, allow_null=True)
    idempotency_key = identifier(help_text="Unique per charge, e.g. msg-{message_id}; a retry reuses it.")
    metadata = MetadataField()


_METADATA = MetadataField()


def charge_in_fast(data: object) -> dict[str, Any] | None:
    """ChargeIn's validated_data for the ordinary charge, or None to use ChargeIn.

    As accounts.serializers.credit_check_in_fast: only input ChargeIn would take unchanged
    is accepted here; errors and anything unusual go to the serializer.
    """
    out = identity_in_fast(data)
    if out is None:
        return None
    assert isinstance(data, dict)
    amount = data.get("amount_minor")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT_MINOR:
        return None
    out["amount_minor"] = amount
    key = data.get("idempotency_key")
    if not plain_text(key, allow_blank=False):
        return None
    out["idempotency_key"] = key
    if "currency" in data:
        currency = data["currency"]
        if not plain_text(currency, allow_blank=False, max_length=3) or currency.upper() != settings.BILLING_CURRENCY:
            return None
        out["currency"] = currency.upper()
    if "description" in data:
        description = data["description"]
        if description is not None and not plain_text(description, allow_blank=True, max_length=1000):
            return None
        out["description"] = description
    if "metadata" in data:
        metadata = data["metadata"]
        if metadata is not None:
            try:
                metadata = _METADATA.to_internal_value(metadata)
            except serializers.ValidationError:
                return None
        out["metadata"] = metadata
    return out


class ChargeOut(serializers.ModelSerializer):
    charge_id = serializers.UUIDField(source="id")
    account_id = serializers.UUIDField()
    balance_after = serializers.IntegerField(source="balance_after_minor", help_text="Paid balance in minor units.")
    free_uses_remaining = serializers.IntegerField(source="free_uses_after")

    class Meta:
        model = Charge
        fields = [
            "charge_id",
            "account_id",
            "amount_minor",
            "currency",
            "balance_after",
            "created_at",
            "description",
            "metadata",
            "idempotency_key",
            "paid_with_free_use",
            "free_uses_remaining",
        ]


def iso_datetime(value: Any) -> str:
    """DRF's DateTimeField output for an aware UTC datetime ("...Z")."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def charge_out(charge: Charge) -> dict[str, Any]:
    """ChargeOut's data, built directly: this answers every charge and replay, and DRF's
    ModelSerializer rebuilds its fields from the model on each use (~1 ms). ChargeOut
    stays the documented shape; tests/test_fast_paths.py keeps the two identical.
    """
    return {
        "charge_id": str(charge.id),
        "account_id": str(charge.account_id),
        "amount_minor": charge.amount_minor,
        "currency": charge.currency,
        "balance_after": charge.balance_after_minor,
        "created_at": iso_datetime(charge.created_at),
        "description": charge.description,
        "metadata": charge.metadata,
        "idempotency_key": charge.idempotency_key,
        "paid_with_free_use": charge.paid_with_free_use,
        "free_uses_remaining": charge.free_uses_after,
    }

"""Input and output shapes of the charge endpoint."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from rest_framework import serializers

from accounts.serializers import IdentityIn
from billing_site.fields import CurrencyField, MetadataField, amount_field, description_field, identifier
from charges.models import Charge


class ChargeIn(IdentityIn):
    amount_minor = amount_field(min_value=1, help_text="Credit units to charge (100 = one use by default).")
    currency = CurrencyField(help_text="Defaults to the service's currency.")
    description = description_field()
    idempotency_key = identifier(help_text="Unique per charge, e.g. msg-{message_id}; a retry reuses it.")
    metadata = MetadataField()


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
    stays the documented shape; tests/test_response_shapes.py keeps the two identical.
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

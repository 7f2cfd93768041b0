"""Input and output shapes of the charge endpoint."""

from __future__ import annotations

from rest_framework import serializers

from accounts.serializers import IdentityIn
from billing_site.fields import CurrencyField, MetadataField, amount_field, description_field, identifier


class ChargeIn(IdentityIn):
    amount_minor = amount_field(min_value=1, help_text="Credit units to charge (100 = one use by default).")
    currency = CurrencyField(help_text="Defaults to the service's currency.")
    description = description_field()
    idempotency_key = identifier(help_text="Unique per charge, e.g. msg-{message_id}; a retry reuses it.")
    metadata = MetadataField()


class ChargeOut(serializers.Serializer):
    """A charge as its caller reads it: the 201, and the body of a 409 replay."""

    charge_id = serializers.UUIDField(source="id")
    account_id = serializers.UUIDField()
    amount_minor = serializers.IntegerField()
    currency = serializers.CharField()
    balance_after = serializers.IntegerField(source="balance_after_minor", help_text="Paid balance in minor units.")
    created_at = serializers.DateTimeField()
    description = serializers.CharField()
    metadata = serializers.JSONField()
    idempotency_key = serializers.CharField()
    paid_with_free_use = serializers.BooleanField()
    free_uses_remaining = serializers.IntegerField(source="free_uses_after")

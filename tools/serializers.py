"""Input and output shapes of /v1/tools/*."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from rest_framework import serializers

from accounts.serializers import IdentityIn
from billing_site.fields import TextField, identifier
from tools.models import PRODUCT_TYPE_PATTERN, ToolCharge

NOT_A_PRODUCT_TYPE = "Unknown product: a product type is lower-case letters, digits, '_' and '-' (e.g. web_search)."
product_type_format = RegexValidator(PRODUCT_TYPE_PATTERN, NOT_A_PRODUCT_TYPE)


def valid_product_type(value: str) -> str:
    """A product type from the URL path, held to the body's rule (a 422 naming the field)."""
    try:
        product_type_format(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({"product_type": exc.messages}) from exc
    return value


class ToolChargeIn(IdentityIn):
    product_type = TextField(max_length=64, validators=[product_type_format], help_text='The tool, e.g. "web_search".')
    idempotency_key = identifier(help_text="Unique per tool use; a retry with it is answered with the original.")


class ToolIdentityQuery(IdentityIn):
    """The identity, in the query string of the GET endpoints."""


class ToolChargeOut(serializers.Serializer):
    """A tool charge (the 200, first time or replayed): the counts as they were after it."""

    success = serializers.SerializerMethodField(help_text="Always true: a refused use is a 402, not a 200.")
    has_credit = serializers.BooleanField(help_text="Whether another use would still be paid for.")
    used_free = serializers.BooleanField()
    used_paid = serializers.BooleanField()
    cost_minor = serializers.IntegerField(help_text="Taken from the paid balance, in credit minor units (0 if free).")
    free_remaining = serializers.IntegerField(source="free_remaining_after")
    paid_credits = serializers.IntegerField(
        source="paid_credits_after", help_text="Uses of this tool the paid balance buys, after this one."
    )
    total_uses = serializers.IntegerField(
        source="total_uses_after", help_text="This account's uses of this tool, ever."
    )
    product_type = serializers.CharField(source="product.product_type")
    tool_charge_id = serializers.UUIDField(source="pk")

    def get_success(self, charge: ToolCharge) -> bool:
        return True


class ToolCheckOut(serializers.Serializer):
    has_credit = serializers.BooleanField()
    product_type = serializers.CharField()
    free_remaining = serializers.IntegerField(help_text="Free uses left (today's top-up included).")
    paid_credits = serializers.IntegerField(help_text="Uses of this tool the paid balance buys (balance ÷ price).")
    main_pool_credits = serializers.IntegerField(
        help_text="The account's credits_remaining: interactions the paid balance buys (balance ÷ one use's price)."
    )
    purchased_remaining = serializers.IntegerField(help_text="Uses bought in store packs (spent after the free ones).")
    total_available = serializers.IntegerField(help_text="free_remaining + purchased_remaining + paid_credits.")


class ToolBalanceOut(serializers.Serializer):
    product_type = serializers.CharField()
    free_remaining = serializers.IntegerField()
    paid_credits = serializers.IntegerField()
    main_pool_credits = serializers.IntegerField()
    purchased_remaining = serializers.IntegerField(help_text="Uses bought in store packs.")
    total_available = serializers.IntegerField()
    price_minor = serializers.IntegerField(help_text="Credit minor units per paid use.")
    total_uses = serializers.IntegerField()


class ToolBalancesOut(serializers.Serializer):
    """Every active tool's balance: the view passes `{"balances": [ToolBalance, ...]}`."""

    balances = ToolBalanceOut(many=True)

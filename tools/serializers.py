"""Input and output shapes of /v1/tools/*."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from accounts.serializers import IdentityIn
from billing_site.fields import TextField, identifier
from tools.models import PRODUCT_TYPE_PATTERN, ToolCharge
from tools.selectors import ToolBalance

_PRODUCT_TYPE = re.compile(PRODUCT_TYPE_PATTERN)
NOT_A_PRODUCT_TYPE = "Unknown product: a product type is lower-case letters, digits, '_' and '-' (e.g. web_search)."


def valid_product_type(value: str) -> str:
    if not _PRODUCT_TYPE.match(value):
        raise serializers.ValidationError({"product_type": [NOT_A_PRODUCT_TYPE]})
    return value


class ToolChargeIn(IdentityIn):
    product_type = TextField(max_length=64, help_text='The tool, e.g. "web_search".')
    idempotency_key = identifier(help_text="Unique per tool use; a retry with it is answered with the original.")

    def validate_product_type(self, value: str) -> str:
        if not _PRODUCT_TYPE.match(value):
            raise serializers.ValidationError(NOT_A_PRODUCT_TYPE)
        return value


class ToolIdentityQuery(IdentityIn):
    """The identity, in the query string of the GET endpoints."""


class ToolChargeOut(serializers.Serializer):
    success = serializers.BooleanField()
    has_credit = serializers.BooleanField(help_text="Whether another use would still be paid for.")
    used_free = serializers.BooleanField()
    used_paid = serializers.BooleanField()
    cost_minor = serializers.IntegerField(help_text="Taken from the paid balance, in credit minor units (0 if free).")
    free_remaining = serializers.IntegerField()
    paid_credits = serializers.IntegerField(help_text="Uses of this tool the paid balance buys, after this one.")
    total_uses = serializers.IntegerField(help_text="This account's uses of this tool, ever.")
    product_type = serializers.CharField()
    tool_charge_id = serializers.UUIDField()


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
    balances = ToolBalanceOut(many=True)


def tool_charge_out(charge: ToolCharge) -> dict[str, Any]:
    return {
        "success": True,
        "has_credit": charge.has_credit,
        "used_free": charge.used_free,
        "used_paid": charge.used_paid,
        "cost_minor": charge.cost_minor,
        "free_remaining": charge.free_remaining_after,
        "paid_credits": charge.paid_credits_after,
        "total_uses": charge.total_uses_after,
        "product_type": charge.product.product_type,
        "tool_charge_id": str(charge.pk),
    }


def tool_check_out(balance: ToolBalance) -> dict[str, Any]:
    return {
        "has_credit": balance.has_credit,
        "product_type": balance.product_type,
        "free_remaining": balance.free_remaining,
        "paid_credits": balance.paid_credits,
        "main_pool_credits": balance.main_pool_credits,
        "purchased_remaining": balance.purchased_remaining,
        "total_available": balance.total_available,
    }


def tool_balance_out(balance: ToolBalance) -> dict[str, Any]:
    return {
        "product_type": balance.product_type,
        "free_remaining": balance.free_remaining,
        "paid_credits": balance.paid_credits,
        "main_pool_credits": balance.main_pool_credits,
        "purchased_remaining": balance.purchased_remaining,
        "total_available": balance.total_available,
        "price_minor": balance.price_minor,
        "total_uses": balance.total_uses,
    }

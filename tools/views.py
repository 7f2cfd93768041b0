"""POST /v1/tools/charge, GET /v1/tools/check/{product_type}, GET /v1/tools/balance[/{product_type}]."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import principal
from accounts.identity import Identity, identity_from
from accounts.models import Scope
from billing_site.api import COMMON_ERRORS, IDENTITY_EXAMPLE, error, validated
from billing_site.errors import BillingError
from tools import metrics, selectors, serializers
from tools.errors import UnknownProduct
from tools.models import ToolProduct
from tools.selectors import ToolBalance
from tools.services import tool_charge_create

CHECK_EXAMPLE = {
    "has_credit": True,
    "product_type": "web_search",
    "free_remaining": 7,
    "paid_credits": 15,
    "main_pool_credits": 15,
    "purchased_remaining": 0,
    "total_available": 22,
}
BALANCE_EXAMPLE = {
    "product_type": "web_search",
    "free_remaining": 7,
    "paid_credits": 15,
    "main_pool_credits": 15,
    "purchased_remaining": 0,
    "total_available": 22,
    "price_minor": 100,
    "total_uses": 6,
}
INACTIVE_NOTE = " A suspended or closed account: has_credit false and 0 for every available count."
READ_ERRORS = {422: error("Missing identity, or an unknown or inactive product."), **COMMON_ERRORS}


def _query_identity(request: Request) -> Identity:
    """The identity in the query string (422 with field errors), under the key's tenant rules."""
    serializer = serializers.ToolIdentityQuery(data=principal(request).own_input(request.query_params))
    serializer.is_valid(raise_exception=True)
    return identity_from(serializer.validated_data, key_tenant_id=principal(request).tenant_id)


def _product(product_type: str) -> ToolProduct:
    product = selectors.product_for(serializers.valid_product_type(product_type))
    if product is None:
        raise UnknownProduct(product_type)
    return product


class ToolChargeView(APIView):
    required_scope = Scope.WRITE

    @extend_schema(
        operation_id="tools_charge",
        summary="Charge one use of a tool (e.g. a web search)",
        description=(
            "Call before the tool runs; only 200 means go ahead. The account's free allowance of "
            "the product pays first (initial on first use, topped up once a UTC day up to a cap), "
            "then price_minor from the paid balance. A retry with the same idempotency_key is 200 "
            "with the original answer and charges nothing; the same key for another product is 422."
        ),
        request=serializers.ToolChargeIn,
        responses={
            200: serializers.ToolChargeOut,
            402: error("No free use left and the paid balance does not cover the price."),
            403: error("Account suspended or closed (account_inactive), or the key lacks permission."),
            422: error("Invalid input, an unknown or inactive product, or the key reused for another product."),
            **{k: v for k, v in COMMON_ERRORS.items() if k not in (403, 422)},
        },
        examples=[
            OpenApiExample(
                "Request (the CIRIS proxy's)",
                request_only=True,
                value={**IDENTITY_EXAMPLE, "product_type": "web_search", "idempotency_key": "search-1a2b3c4d-9f8e7d6c"},
            ),
            OpenApiExample(
                "Paid by the free allowance",
                response_only=True,
                status_codes=["200"],
                value={
                    "success": True,
                    "has_credit": True,
                    "used_free": True,
                    "used_paid": False,
                    "cost_minor": 0,
                    "free_remaining": 9,
                    "paid_credits": 0,
                    "total_uses": 1,
                    "product_type": "web_search",
                    "tool_charge_id": "3f2c1e0a-7b6d-4c5e-9a8b-1c2d3e4f5a6b",
                },
            ),
            OpenApiExample(
                "No credits",
                response_only=True,
                status_codes=["402"],
                value={
                    "detail": "No web_search credits available. Balance: 0, Required: 100",
                    "code": "insufficient_credits",
                    "product_type": "web_search",
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(serializers.ToolChargeIn, request)
        identity = identity_from(data, key_tenant_id=principal(request).tenant_id)
        product_type = data["product_type"]
        try:
            charge, created = tool_charge_create(
                identity=identity,
                product_type=product_type,
                idempotency_key=data["idempotency_key"],
                actor=principal(request).actor,
            )
        except BillingError as refused:
            metrics.observe_tool_refusal(refused, product=product_type)
            raise
        if not created:
            metrics.observe_tool_charge(product=product_type, result="duplicate")
        else:
            result = "free" if charge.used_free else "paid"
            metrics.observe_tool_charge(product=product_type, result=result, cost_minor=charge.cost_minor)
        return Response(serializers.tool_charge_out(charge))


class _OneToolReadView(APIView):
    """The identity's balance of one tool, answered in `shape`: a check and a balance read
    the same and differ only in what they show of it."""

    required_scope = Scope.READ
    user_tokens_allowed = True
    shape: Callable[[ToolBalance], dict[str, Any]]

    def get(self, request: Request, product_type: str) -> Response:
        balance = selectors.tool_balance(identity=_query_identity(request), product=_product(product_type))
        return Response(type(self).shape(balance))


@extend_schema_view(
    get=extend_schema(
        operation_id="tools_check",
        summary="May this user use the tool now?",
        description="Identity in the query string. Writes nothing." + INACTIVE_NOTE,
        parameters=[serializers.ToolIdentityQuery],
        responses={200: serializers.ToolCheckOut, **READ_ERRORS},
        examples=[OpenApiExample("Has credit", response_only=True, value=CHECK_EXAMPLE)],
    )
)
class ToolCheckView(_OneToolReadView):
    shape = staticmethod(serializers.tool_check_out)


@extend_schema_view(
    get=extend_schema(
        operation_id="tools_balance",
        summary="The user's balance of one tool",
        description="Identity in the query string. Writes nothing." + INACTIVE_NOTE,
        parameters=[serializers.ToolIdentityQuery],
        responses={200: serializers.ToolBalanceOut, **READ_ERRORS},
        examples=[OpenApiExample("Balance", response_only=True, value=BALANCE_EXAMPLE)],
    )
)
class ToolBalanceView(_OneToolReadView):
    shape = staticmethod(serializers.tool_balance_out)


class ToolBalancesView(APIView):
    required_scope = Scope.READ
    user_tokens_allowed = True

    @extend_schema(
        operation_id="tools_balances",
        summary="The user's balance of every active tool",
        description="Identity in the query string. Writes nothing." + INACTIVE_NOTE,
        parameters=[serializers.ToolIdentityQuery],
        responses={200: serializers.ToolBalancesOut, **READ_ERRORS},
        examples=[OpenApiExample("Balances", response_only=True, value={"balances": [BALANCE_EXAMPLE]})],
    )
    def get(self, request: Request) -> Response:
        balances = selectors.tool_balances(identity=_query_identity(request))
        return Response({"balances": [serializers.tool_balance_out(b) for b in balances]})

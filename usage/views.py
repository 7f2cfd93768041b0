"""LLM usage records and the ledger by identity: validate, call one service or selector, shape."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import principal
from accounts.identity import identity_from
from accounts.models import Scope
from accounts.views import visible_account
from billing_site.api import COMMON_ERRORS, IDENTITY_EXAMPLE, error
from billing_site.pagination import NewestFirstCursorPagination
from usage import selectors, services
from usage.models import UsageRecord
from usage.parsers import DecimalJSONParser
from usage.serializers import (
    TransactionsOut,
    TransactionsQuery,
    UsageIn,
    UsageLoggedOut,
    UsageOut,
    transaction_out,
)

PER_CALL_EXAMPLE = {
    **IDENTITY_EXAMPLE,
    "interaction_id": "int-7f3a9c",
    "total_llm_calls": 1,
    "total_prompt_tokens": 1200,
    "total_completion_tokens": 340,
    "models_used": ["groq/llama-3.3-70b"],
    "actual_cost_cents": 0.0421,
    "duration_ms": 850,
    "error_count": 0,
    "fallback_count": 0,
}
USAGE_EXAMPLE = {
    "usage_log_id": 42,
    **{k: v for k, v in PER_CALL_EXAMPLE.items() if k not in IDENTITY_EXAMPLE},
    "total_llm_calls": 12,
    "total_prompt_tokens": 14400,
    "total_completion_tokens": 4080,
    "actual_cost_cents": 0.5052,
    "duration_ms": 10200,
    "charge_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
    "created_at": "2025-01-08T12:34:56.789Z",
    "updated_at": "2025-01-08T12:35:06.989Z",
}


class UsageCreateView(APIView):
    required_scope = Scope.WRITE
    parser_classes = [DecimalJSONParser]

    @extend_schema(
        operation_id="litellm_usage_create",
        summary="Record an LLM interaction's usage (the LLM proxy, after every call)",
        description=(
            "One record per (account, interaction_id). Per-call posts (total_llm_calls 1) are summed; aggregated "
            "posts (the totals so far, integer cents; a one-call post with whole non-zero cents is one) keep "
            "their largest value; each total is the larger of the two, so a call is never counted twice whatever "
            "the order. The cost is stored exactly as sent (a JSON number, read as a decimal). Creates the "
            "account on first sight, like a credit check."
        ),
        request=UsageIn,
        responses={201: UsageLoggedOut, **COMMON_ERRORS},
        examples=[
            OpenApiExample("Per-call post", value=PER_CALL_EXAMPLE, request_only=True),
            OpenApiExample(
                "Aggregated post",
                value={
                    **PER_CALL_EXAMPLE,
                    "total_llm_calls": 12,
                    "total_prompt_tokens": 14400,
                    "total_completion_tokens": 4080,
                    "actual_cost_cents": 0,
                    "duration_ms": 10200,
                },
                request_only=True,
            ),
            OpenApiExample("Logged", value={"logged": True, "usage_log_id": 42}, response_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = UsageIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        identity = identity_from(serializer.validated_data, key_tenant_id=principal(request).tenant_id)
        record = services.usage_record(identity=identity, actor=principal(request).actor, post=serializer.post())
        return Response({"logged": True, "usage_log_id": record.pk}, status=status.HTTP_201_CREATED)


class AccountUsageView(generics.ListAPIView):
    """The account's usage records, newest first."""

    required_scope = Scope.READ
    serializer_class = UsageOut
    pagination_class = NewestFirstCursorPagination

    def get_queryset(self) -> QuerySet[UsageRecord]:
        account = visible_account(self.request, self.kwargs["account_id"])
        return selectors.account_usage(account_id=account.pk)

    @extend_schema(
        operation_id="accounts_usage",
        summary="An account's LLM usage records (cursor-paginated, newest first)",
        responses={200: UsageOut(many=True), 404: error("No such account (or another tenant's)."), **COMMON_ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={"next": None, "previous": None, "results": [USAGE_EXAMPLE]},
            )
        ],
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


TRANSACTION_EXAMPLE = {
    "transaction_id": "1042",
    "type": "charge",
    "amount_minor": -1,
    "currency": "USD",
    "description": "LiteLLM interaction: int-7f3a9c",
    "created_at": "2025-01-08T12:34:56.789Z",
    "balance_after": 19,
    "transaction_type": "charge",
    "external_transaction_id": "litellm:int-7f3a9c",
    "metadata": {},
    "free_uses_delta": 0,
}


class TransactionsView(APIView):
    required_scope = Scope.READ
    user_tokens_allowed = True

    @extend_schema(
        operation_id="transactions_by_identity",
        summary="A user's transactions by identity (the agent's history page), newest first",
        description=(
            "The identity's ledger: charges (negative amount_minor when paid from the balance, 0 for a free use) "
            "and credits (purchases, grants, refunds as their transaction_type). An unknown user has no "
            "transactions (and no account is created)."
        ),
        parameters=[
            OpenApiParameter("oauth_provider", OpenApiTypes.STR, required=True),
            OpenApiParameter("external_id", OpenApiTypes.STR, required=True),
            OpenApiParameter("tenant_id", OpenApiTypes.STR),
            OpenApiParameter("wa_id", OpenApiTypes.STR, description="Accepted and ignored."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1-100, default 50."),
            OpenApiParameter("offset", OpenApiTypes.INT, description="0-100000, default 0."),
        ],
        responses={200: TransactionsOut, **COMMON_ERRORS},
        examples=[
            OpenApiExample(
                "History",
                response_only=True,
                value={
                    "transactions": [
                        TRANSACTION_EXAMPLE,
                        {
                            **TRANSACTION_EXAMPLE,
                            "transaction_id": "1001",
                            "type": "credit",
                            "amount_minor": 20,
                            "description": "Purchase",
                            "balance_after": 20,
                            "transaction_type": "purchase",
                            "external_transaction_id": "pi_3Nxyz",
                            "metadata": None,
                        },
                    ],
                    "total_count": 2,
                    "has_more": False,
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        query = TransactionsQuery(data=principal(request).own_input(request.query_params))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        identity = identity_from(data, key_tenant_id=principal(request).tenant_id)
        entries, total = selectors.identity_transactions(identity=identity, limit=data["limit"], offset=data["offset"])
        return Response(
            {
                "transactions": [transaction_out(entry) for entry in entries],
                "total_count": total,
                "has_more": data["offset"] + len(entries) < total,
            }
        )

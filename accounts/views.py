"""Credit check, accounts, ledger and grants: validate, call one service, shape the answer."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.auth import principal
from accounts.identity import identity_from
from accounts.models import Account, Scope
from accounts.serializers import (
    AccountOut,
    CreditCheckIn,
    CreditCheckOut,
    CreditGrantIn,
    IdentityIn,
    LedgerEntryOut,
    credit_check_out,
)
from billing_site import metrics
from billing_site.api import COMMON_ERRORS, IDENTITY_EXAMPLE, error, replay_response, validated
from billing_site.pagination import NewestFirstCursorPagination
from ledger.models import EntryKind, LedgerEntry

ACCOUNT_EXAMPLE = OpenApiExample(
    "Account",
    response_only=True,
    value={
        "account_id": "550e8400-e29b-41d4-a716-446655440000",
        "oauth_provider": "oauth:google",
        "external_id": "user@example.com",
        "wa_id": "wa-123",
        "tenant_id": None,
        "status": "active",
        "plan_name": "pro",
        "free_uses_remaining": 0,
        "credits_remaining": 15,
        "balance_minor": 1500,
        "currency": "USD",
        "total_uses": 28,
        "created_at": "2025-01-08T12:34:56.789Z",
    },
)
ENTRY_EXAMPLE = {
    "entry_id": 42,
    "account_id": "550e8400-e29b-41d4-a716-446655440000",
    "kind": "charge",
    "balance_delta_minor": -100,
    "free_uses_delta": 0,
    "balance_after_minor": 1900,
    "free_uses_after": 0,
    "daily_free_uses_delta": 0,
    "daily_free_uses_after": 0,
    "currency": "USD",
    "charge_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
    "purchase_id": None,
    "actor": "api_key:Ab12Cd34",
    "reason": "Agent interaction - datum",
    "created_at": "2025-01-08T12:34:56.789Z",
}


class CreditCheckView(APIView):
    required_scope = Scope.READ
    user_tokens_allowed = True

    @extend_schema(
        operation_id="credits_check",
        summary="May this user have one more interaction?",
        description="Call before every interaction. Creates the account on first sight with the free uses.",
        request=CreditCheckIn,
        responses={200: CreditCheckOut, **COMMON_ERRORS},
        examples=[
            OpenApiExample("Request", value={**IDENTITY_EXAMPLE, "context": {"agent_id": "datum"}}, request_only=True),
            OpenApiExample(
                "New user",
                response_only=True,
                value={
                    "has_credit": True,
                    "credits_remaining": 0,
                    "free_uses_remaining": 3,
                    "daily_free_uses_remaining": 0,
                    "daily_free_uses_limit": 0,
                    "total_uses": 0,
                    "plan_name": "free",
                    "reason": None,
                    "purchase_required": False,
                    "purchase_price_minor": None,
                    "purchase_uses": None,
                },
            ),
            OpenApiExample(
                "Free tier exhausted",
                response_only=True,
                value={
                    "has_credit": False,
                    "credits_remaining": 0,
                    "free_uses_remaining": 0,
                    "daily_free_uses_remaining": 0,
                    "daily_free_uses_limit": 0,
                    "total_uses": 3,
                    "plan_name": "free",
                    "reason": "No free uses or credits remaining",
                    "purchase_required": True,
                    "purchase_price_minor": 500,
                    "purchase_uses": 20,
                },
            ),
            OpenApiExample(
                "Suspended (every count 0; the stored balance stays in balance_minor)",
                response_only=True,
                value={
                    "has_credit": False,
                    "credits_remaining": 0,
                    "free_uses_remaining": 0,
                    "daily_free_uses_remaining": 0,
                    "daily_free_uses_limit": 0,
                    "total_uses": 12,
                    "plan_name": "pro",
                    "reason": "Account suspended",
                    "purchase_required": False,
                    "purchase_price_minor": None,
                    "purchase_uses": None,
                    "balance_minor": 1500,
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(CreditCheckIn, request)
        identity = identity_from(data, key_tenant_id=principal(request).tenant_id)
        account, _ = services.account_get_or_create(identity=identity, actor=principal(request).actor)
        result = selectors.credit_status(account=account, amount_minor=data.get("amount_minor"))
        metrics.observe_credit_check(result=result.result)
        return Response(credit_check_out(result))


class AccountCreateView(APIView):
    required_scope = Scope.WRITE

    @extend_schema(
        operation_id="accounts_create",
        summary="Create or get an account",
        request=IdentityIn,
        responses={201: AccountOut, 200: AccountOut, **COMMON_ERRORS},
        examples=[OpenApiExample("Request", value=IDENTITY_EXAMPLE, request_only=True), ACCOUNT_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        data = validated(IdentityIn, request)
        identity = identity_from(data, key_tenant_id=principal(request).tenant_id)
        account, created = services.account_get_or_create(identity=identity, actor=principal(request).actor)
        return Response(AccountOut(account).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def visible_account(request: Request, account_id: str) -> Account:
    """The account, if this caller's key may see it; 404 otherwise (also for another tenant's)."""
    return get_object_or_404(selectors.accounts_visible_to(tenant_id=principal(request).tenant_id), pk=account_id)


class AccountDetailView(APIView):
    required_scope = Scope.READ

    @extend_schema(
        operation_id="accounts_retrieve",
        summary="An account's state",
        responses={200: AccountOut, 404: error("No such account (or another tenant's)."), **COMMON_ERRORS},
        examples=[ACCOUNT_EXAMPLE],
    )
    def get(self, request: Request, account_id: str) -> Response:
        return Response(AccountOut(visible_account(request, account_id)).data)


# The ledger pages like every list: newest first, forged cursors refused (a 404).
LedgerPagination = NewestFirstCursorPagination


class AccountTransactionsView(generics.ListAPIView):
    """The account's ledger, newest first."""

    required_scope = Scope.READ
    serializer_class = LedgerEntryOut
    pagination_class = LedgerPagination

    def get_queryset(self) -> QuerySet[LedgerEntry]:
        account = visible_account(self.request, self.kwargs["account_id"])
        return selectors.account_ledger(account=account)

    @extend_schema(
        operation_id="accounts_transactions",
        summary="An account's ledger (cursor-paginated, newest first)",
        responses={200: LedgerEntryOut(many=True), 404: error("No such account."), **COMMON_ERRORS},
        examples=[
            OpenApiExample(
                "A page",
                response_only=True,
                value={
                    "next": "https://billing.example.com/...?cursor=cD0xMjM%3D",
                    "previous": None,
                    "results": [ENTRY_EXAMPLE],
                },
            )
        ],
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class CreditGrantView(APIView):
    required_scope = Scope.ADMIN

    @extend_schema(
        operation_id="credits_grant",
        summary="Grant or adjust paid credit and free uses (admin keys)",
        description="Idempotent on idempotency_key per account: a replay is 409 with the original entry.",
        request=CreditGrantIn,
        responses={
            201: LedgerEntryOut,
            409: OpenApiResponse(LedgerEntryOut, description="Already granted with this key: the original entry."),
            **COMMON_ERRORS,
        },
        examples=[
            OpenApiExample(
                "Grant 5 uses",
                request_only=True,
                value={
                    **IDENTITY_EXAMPLE,
                    "amount_minor": 500,
                    "reason": "Support: apology for an outage",
                    "idempotency_key": "ticket-4711",
                },
            ),
            OpenApiExample(
                "Granted",
                response_only=True,
                status_codes=["201"],
                value={
                    **ENTRY_EXAMPLE,
                    "kind": "grant",
                    "balance_delta_minor": 500,
                    "balance_after_minor": 2400,
                    "charge_id": None,
                    "reason": "Support: apology for an outage",
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(CreditGrantIn, request)
        identity = identity_from(data, key_tenant_id=principal(request).tenant_id)
        entry, created = services.credits_grant(
            identity=identity,
            actor=principal(request).actor,
            reason=data["reason"],
            amount_minor=data["amount_minor"],
            free_uses=data["free_uses"],
            kind=EntryKind(data["kind"]),
            idempotency_key=data["idempotency_key"],
            description=data.get("description") or "",
        )
        if not created:
            return replay_response(
                LedgerEntryOut(entry).data,
                detail="A grant with this idempotency key already exists.",
                headers={"X-Existing-Entry-ID": str(entry.pk)},
            )
        return Response(LedgerEntryOut(entry).data, status=status.HTTP_201_CREATED)

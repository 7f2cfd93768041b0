"""POST /v1/billing/purchases and GET /v1/billing/purchases/{payment_id}[/status]."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import principal
from accounts.identity import identity_from, user_owns
from accounts.models import Scope
from billing_site.api import COMMON_ERRORS, IDENTITY_EXAMPLE, error, validated
from billing_site.errors import NotFound
from purchases.selectors import purchase_for_payment
from purchases.serializers import PurchaseIn, PurchaseOut, PurchaseStatusOut
from purchases.services import purchase_create

STATUS_EXAMPLE = {
    "payment_id": "pi_1234567890abcdef",
    "purchase_id": "7d0c5e8a-1b2c-4d3e-8f90-a1b2c3d4e5f6",
    "account_id": "550e8400-e29b-41d4-a716-446655440000",
    "status": "succeeded",
    "succeeded": True,
    "credits_added": 20,
    "balance_after": 20,
    "amount_minor": 500,
    "currency": "USD",
    "uses_purchased": 20,
    "credits_refunded": 0,
    "refunded_minor": 0,
    "disputed_minor": 0,
    "created_at": "2025-01-08T12:34:56.789Z",
    "credited_at": "2025-01-08T12:35:10.123Z",
}


class PurchaseCreateView(APIView):
    required_scope = Scope.WRITE
    user_tokens_allowed = True

    @extend_schema(
        operation_id="purchases_create",
        summary="Start buying a credit pack (creates a Stripe PaymentIntent)",
        description=(
            "Creates the account on first sight, a purchase and its Stripe PaymentIntent. The "
            "frontend confirms the card with Stripe.js using client_secret and publishable_key; "
            "credits arrive through Stripe's webhook, exactly once. With an idempotency_key a "
            "retry returns the same purchase (200) instead of a second payment. 503 while Stripe "
            "is not configured or unreachable."
        ),
        request=PurchaseIn,
        responses={
            201: PurchaseOut,
            200: OpenApiResponse(PurchaseOut, description="A retry with the same idempotency_key: the same purchase."),
            403: error("Account suspended or closed, or the key lacks permission."),
            503: error("Stripe is not configured, or unreachable (see Retry-After)."),
            **{k: v for k, v in COMMON_ERRORS.items() if k not in (403, 503)},
        },
        examples=[
            OpenApiExample(
                "Request",
                request_only=True,
                value={**IDENTITY_EXAMPLE, "customer_email": "user@example.com"},
            ),
            OpenApiExample(
                "Created",
                response_only=True,
                status_codes=["201"],
                value={
                    "payment_id": "pi_1234567890abcdef",
                    "purchase_id": "7d0c5e8a-1b2c-4d3e-8f90-a1b2c3d4e5f6",
                    "account_id": "550e8400-e29b-41d4-a716-446655440000",
                    "client_secret": "pi_1234567890abcdef_secret_xyz",
                    "amount_minor": 500,
                    "currency": "USD",
                    "uses_purchased": 20,
                    "publishable_key": "pk_live_...",
                    "status": "requires_payment_method",
                    "created_at": "2025-01-08T12:34:56.789Z",
                },
            ),
            OpenApiExample(
                "Stripe not configured",
                response_only=True,
                status_codes=["503"],
                value={
                    "detail": "Purchases are unavailable: Stripe is not configured on this billing service "
                    "(set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET).",
                    "code": "service_unavailable",
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(PurchaseIn, request)
        identity = identity_from(data, key_tenant_id=principal(request).tenant_id)
        purchase, created = purchase_create(
            identity=identity,
            actor=principal(request).actor,
            quantity=data["quantity"],
            idempotency_key=data.get("idempotency_key") or None,
        )
        return Response(PurchaseOut(purchase).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


STATUS_SCHEMA: dict[str, Any] = {
    "summary": "Has this payment succeeded, and were the credits added?",
    "description": "Poll after the frontend confirmed the payment. credits_added and balance_after are in uses.",
    "responses": {200: PurchaseStatusOut, 404: error("No such purchase (or another tenant's)."), **COMMON_ERRORS},
    "examples": [OpenApiExample("Succeeded", response_only=True, value=STATUS_EXAMPLE)],
}


class PurchaseDetailView(APIView):
    required_scope = Scope.READ
    user_tokens_allowed = True

    @extend_schema(operation_id="purchases_retrieve", **STATUS_SCHEMA)
    def get(self, request: Request, payment_id: str) -> Response:
        purchase = purchase_for_payment(payment_id=payment_id, tenant_id=principal(request).tenant_id)
        if not user_owns(purchase.account, caller=request.auth):
            raise NotFound("No such purchase.")
        return Response(PurchaseStatusOut(purchase).data)


class PurchaseStatusView(PurchaseDetailView):
    """The same answer at the guide's /status path."""

    @extend_schema(operation_id="purchases_status", **STATUS_SCHEMA)
    def get(self, request: Request, payment_id: str) -> Response:
        return super().get(request, payment_id)

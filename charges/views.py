"""POST /v1/billing/charges."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import principal
from accounts.identity import identity_from
from accounts.models import Scope
from billing_site import metrics
from billing_site.api import COMMON_ERRORS, IDENTITY_EXAMPLE, error, replay_response, validated
from billing_site.errors import BillingError
from charges.serializers import ChargeIn, ChargeOut
from charges.services import charge_create


class ChargeCreateView(APIView):
    required_scope = Scope.WRITE

    @extend_schema(
        operation_id="charges_create",
        summary="Charge one interaction",
        description=(
            "Call after the interaction. Daily free uses (BILLING_DAILY_FREE_USES) pay first, then free uses, "
            "then the paid balance. "
            "A retry with the same idempotency_key is 409 with the original charge and "
            "header X-Existing-Charge-ID; the same key with another amount, currency or "
            "description is 422."
        ),
        request=ChargeIn,
        responses={
            201: ChargeOut,
            402: error("Insufficient credits. Balance: 0, Required: 100"),
            403: error("Account suspended or closed, or the key lacks permission."),
            409: OpenApiResponse(ChargeOut, description="Already charged with this key: the original charge."),
            **{k: v for k, v in COMMON_ERRORS.items() if k != 403},
        },
        examples=[
            OpenApiExample(
                "Request",
                request_only=True,
                value={
                    **IDENTITY_EXAMPLE,
                    "amount_minor": 100,
                    "currency": "USD",
                    "description": "Agent interaction - datum",
                    "idempotency_key": "msg-123",
                    "metadata": {"message_id": "msg-123", "agent_id": "datum"},
                },
            ),
            OpenApiExample(
                "Created",
                response_only=True,
                status_codes=["201"],
                value={
                    "charge_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
                    "account_id": "550e8400-e29b-41d4-a716-446655440000",
                    "amount_minor": 100,
                    "currency": "USD",
                    "balance_after": 1900,
                    "created_at": "2025-01-08T12:34:56.789Z",
                    "description": "Agent interaction - datum",
                    "metadata": {"message_id": "msg-123", "agent_id": "datum"},
                },
            ),
            OpenApiExample(
                "Insufficient",
                response_only=True,
                status_codes=["402"],
                value={"detail": "Insufficient credits. Balance: 0, Required: 100", "code": "insufficient_credits"},
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(ChargeIn, request)
        identity = identity_from(data, key_tenant_id=principal(request).tenant_id)
        try:
            charge, created = charge_create(
                identity=identity,
                amount_minor=data["amount_minor"],
                currency=data["currency"],
                idempotency_key=data["idempotency_key"],
                actor=principal(request).actor,
                description=data.get("description") or "",
                metadata=data.get("metadata"),
            )
        except BillingError as refused:
            metrics.observe_charge_amount(amount_minor=data["amount_minor"])
            metrics.observe_charge_refusal(refused)
            raise
        if not created:
            metrics.observe_charge(result="duplicate")
            return replay_response(
                ChargeOut.model_validate(charge).model_dump(mode="json"),
                detail="Charge already exists for this idempotency key.",
                headers={"X-Existing-Charge-ID": str(charge.pk)},
            )
        # Counted for charge requests, not for replays (the proxy sends up to 70 per interaction).
        metrics.observe_charge_amount(amount_minor=data["amount_minor"])
        metrics.observe_charge(result="free" if charge.paid_with_free_use else "ok", debited_minor=charge.debited_minor)
        return Response(ChargeOut.model_validate(charge).model_dump(mode="json"), status=status.HTTP_201_CREATED)

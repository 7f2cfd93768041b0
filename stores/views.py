"""POST /v1/billing/google-play/verify, POST /v1/tools/purchase/verify and the Play RTDN push
(POST /v1/billing/webhooks/google-play)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import UserPrincipal, principal
from accounts.identity import Identity, identity_from
from accounts.models import Scope
from billing_site.api import COMMON_ERRORS, error, validated
from stores import serializers, webhooks
from stores.errors import IdentityRequired, ToolPurchaseAlreadyProcessed, UserTokenRequired
from stores.google_play import PlayUnavailable
from stores.models import Grants
from stores.services import google_play_verify
from tools.selectors import tool_balance


def caller_identity(request: Request, data: dict[str, Any]) -> Identity:
    """The identity to credit: a user token's own (`validated` already put it in `data`,
    whatever the body named), else the body's, under the API key's tenant rules."""
    if not data.get("oauth_provider") or not data.get("external_id"):
        raise IdentityRequired()
    email = data.get("customer_email") or data.get("email") or ""
    return identity_from({**data, "customer_email": email}, key_tenant_id=principal(request).tenant_id)


VERIFY_REQUEST = {
    "oauth_provider": "oauth:google",
    "external_id": "104378562712345678901",
    "email": "user@example.com",
    "display_name": "A. User",
    "purchase_token": "opaque-token-from-play-billing.AO-J1Oz...",
    "product_id": "credits_100",
    "package_name": "ai.ciris.mobile",
}
VERIFY_OK = {
    "success": True,
    "credits_added": 99,
    "new_balance": 99,
    "already_processed": False,
    "order_id": "GPA.3312-4567-8901-23456",
    "account_id": "550e8400-e29b-41d4-a716-446655440000",
}


class GooglePlayVerifyView(APIView):
    required_scope = Scope.WRITE
    user_tokens_allowed = True

    @extend_schema(
        operation_id="google_play_verify",
        summary="Credit a Google Play purchase (once per purchase token)",
        description=(
            "The agent forwards every Play purchase here, and the Android app re-sends each "
            "unconsumed one at every start. With an API key (write) the identity is the body's; "
            "with a user's ID token (Authorization: Bearer) it is the token's and the body's "
            "identity fields are ignored. The service asks the Play Developer API, credits the "
            "product's uses exactly once per purchase token, then consumes the purchase. A replay "
            "from the same account is 200 with already_processed true and the original "
            "credits_added; a token credited to another account is 409."
        ),
        request=serializers.GooglePlayVerifyIn,
        responses={
            200: serializers.GooglePlayVerifyOut,
            400: error(
                "purchase_pending, purchase_cancelled, purchase_not_found (unknown or expired token), "
                "purchase_voided (refunded), or malformed JSON."
            ),
            409: error("The purchase token was already credited to another account."),
            422: error("A package not in GOOGLE_PLAY_PACKAGE_NAMES, a product that is not a store product."),
            503: error("Google Play unreachable or not configured (see Retry-After)."),
            **{k: v for k, v in COMMON_ERRORS.items() if k not in (400, 422, 503)},
        },
        examples=[
            OpenApiExample("Request (the CIRIS agent's)", request_only=True, value=VERIFY_REQUEST),
            OpenApiExample("Credited", response_only=True, status_codes=["200"], value=VERIFY_OK),
            OpenApiExample(
                "Replay",
                response_only=True,
                status_codes=["200"],
                value={**VERIFY_OK, "already_processed": True},
            ),
            OpenApiExample(
                "Pending",
                response_only=True,
                status_codes=["400"],
                value={
                    "detail": "The purchase is pending: it is credited once the payment completes.",
                    "code": "purchase_pending",
                },
            ),
            OpenApiExample(
                "Another account's",
                response_only=True,
                status_codes=["409"],
                value={
                    "detail": "This purchase was already credited to another account.",
                    "code": "purchase_of_another_account",
                },
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(serializers.GooglePlayVerifyIn, request)
        identity = caller_identity(request, data)
        verified = google_play_verify(
            identity=identity,
            package_name=data["package_name"],
            product_id=data["product_id"],
            purchase_token=data["purchase_token"],
            actor=principal(request).actor,
        )
        return Response(
            serializers.google_play_verify_out(
                purchase=verified.purchase, account=verified.account, already_processed=verified.already_processed
            )
        )


class ToolPurchaseVerifyView(APIView):
    required_scope = Scope.WRITE  # API keys are refused below: the pack is the signed-in user's
    user_tokens_allowed = True

    @extend_schema(
        operation_id="tools_purchase_verify",
        summary="Add a Google Play tool pack (e.g. 10 web searches) to the user's tool",
        description=(
            "User token only (Authorization: Bearer <Google ID token>). The pack is verified with "
            "Play for the first package in GOOGLE_PLAY_PACKAGE_NAMES and adds purchased uses of "
            "the tool: spent after its free allowance, before the main balance, never capped. "
            "A replay of the token is 409."
        ),
        request=serializers.ToolPurchaseVerifyIn,
        responses={
            200: serializers.ToolPurchaseVerifyOut,
            400: error("purchase_pending, purchase_cancelled, purchase_not_found, purchase_voided."),
            403: error("Not a user token."),
            409: error("Purchase already processed (or another account's)."),
            422: error("Not a tool pack of that tool."),
            503: error("Google Play unreachable or not configured (see Retry-After)."),
            **{k: v for k, v in COMMON_ERRORS.items() if k not in (400, 403, 422, 503)},
        },
        examples=[
            OpenApiExample(
                "Request (the CIRIS agent's)",
                request_only=True,
                value={"product_id": "web_search_10", "purchase_token": "opaque-token...", "tool_name": "web_search"},
            ),
            OpenApiExample(
                "Added",
                response_only=True,
                status_codes=["200"],
                value={
                    "success": True,
                    "product_type": "web_search",
                    "credits_added": 10,
                    "new_balance": 23,
                    "message": "Added 10 web_search uses.",
                },
            ),
            OpenApiExample(
                "Replay",
                response_only=True,
                status_codes=["409"],
                value={"detail": "Purchase already processed", "code": "already_processed"},
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.auth, UserPrincipal):
            raise UserTokenRequired("This route takes a user's ID token (Authorization: Bearer), not an API key.")
        data = validated(serializers.ToolPurchaseVerifyIn, request)
        identity = Identity(
            oauth_provider=request.auth.provider, external_id=request.auth.sub, email=request.auth.email
        )
        packages = settings.GOOGLE_PLAY_PACKAGE_NAMES
        if not packages:
            raise PlayUnavailable("Google Play is not configured on this server (GOOGLE_PLAY_PACKAGE_NAMES).")
        verified = google_play_verify(
            identity=identity,
            package_name=packages[0],
            product_id=data["product_id"],
            purchase_token=data["purchase_token"],
            actor=principal(request).actor,
            grants=Grants.TOOL,
            tool_name=data["tool_name"],
        )
        if verified.already_processed:
            raise ToolPurchaseAlreadyProcessed()
        product = verified.purchase.product
        assert product is not None and product.tool is not None
        balance = tool_balance(identity=identity, product=product.tool)
        uses = verified.purchase.uses_credited
        return Response(
            {
                "success": True,
                "product_type": product.tool.product_type,
                "credits_added": uses,
                "new_balance": balance.total_available,
                "message": f"Added {uses} {product.tool.product_type} uses.",
            }
        )


class GooglePlayNotificationView(APIView):
    """Pub/Sub push of Play's Real-time developer notifications; its own OIDC token, no API key."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="google_play_notifications",
        # Authorization: Bearer, carrying Google's OIDC token for the push (not an API key).
        auth=[{"BearerAuth": []}],  # type: ignore[list-item]  # drf-spectacular accepts security objects; its hint says str
        summary="Google Play Real-time developer notifications (Pub/Sub push)",
        description=(
            "Authenticated by the push's OIDC token (Authorization: Bearer, signed by Google, aud "
            "GOOGLE_PLAY_PUBSUB_AUDIENCE, email GOOGLE_PLAY_PUBSUB_SERVICE_ACCOUNT). A "
            "voidedPurchaseNotification takes the purchase's credit back (capped by what is left, "
            "the shortfall recorded and flagged); a purchase voided before it is verified is never "
            "credited. De-duplicated by messageId; test and other notifications answer 200."
        ),
        request=serializers.PubSubPushIn,
        responses={
            200: webhooks.NotificationOut,
            400: error("Not a Pub/Sub push, or its data is not a DeveloperNotification."),
            401: error("No valid OIDC token from the configured push service account (or none configured)."),
            503: error("Google's keys cannot be fetched (see Retry-After): Pub/Sub delivers again."),
        },
        examples=[
            OpenApiExample(
                "Push",
                request_only=True,
                value={
                    "message": {
                        "data": "eyJ2ZXJzaW9uIjoiMS4wIiwicGFja2FnZU5hbWUiOiJhaS5jaXJpcy5tb2JpbGUiLCJ2b2lkZWRQdXJja...",
                        "messageId": "136969346945",
                        "publishTime": "2026-12-01T12:00:00.000Z",
                    },
                    "subscription": "projects/ciris/subscriptions/play-rtdn",
                },
            ),
            OpenApiExample("Handled", response_only=True, value={"received": True, "outcome": "reversed"}),
        ],
    )
    def post(self, request: Request) -> Response:
        webhooks.verify_push_token(request.META.get("HTTP_AUTHORIZATION", ""))
        body = serializers.PubSubPushIn(data=request.data)
        if not body.is_valid():
            raise webhooks.BadNotification("Not a Pub/Sub push message.")
        message = body.validated_data["message"]
        outcome = webhooks.handle_notification(message_id=message["messageId"], data=message.get("data", ""))
        return Response({"received": True, "outcome": outcome})

"""The App Store routes: the iOS app's verify (POST /v1/user/apple-storekit/verify), the
agent's (POST /v1/billing/apple-storekit/verify) and App Store Server Notifications V2
(POST /v1/billing/webhooks/apple-storekit)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import UserPrincipal, principal
from accounts.identity import Identity, identity_from
from accounts.models import Scope
from accounts.selectors import account_for_identity
from billing_site.api import COMMON_ERRORS, error, validated
from billing_site.errors import BillingError
from stores import app_store, serializers
from stores.errors import (
    IdentityRequired,
    PurchaseInvalid,
    PurchaseNotFound,
    PurchaseOfAnotherAccount,
    PurchaseVoided,
    UnknownStoreProduct,
    UserTokenRequired,
)
from stores.services import Verified, app_store_notification_apply, app_store_verify
from stores.webhooks import BadNotification, NotificationOut

# What makes a transaction not creditable: the iOS app hears success false (and keeps the
# transaction unfinished); the agent's route answers these statuses.
NOT_CREDITABLE = (PurchaseNotFound, PurchaseVoided, PurchaseInvalid, PurchaseOfAnotherAccount, UnknownStoreProduct)


class NotificationSignatureInvalid(BillingError):
    status_code = 401
    code = "invalid_signature"


def _identity(request: Request, data: dict[str, Any]) -> Identity:
    """A user token's own identity (the body's is ignored), else the body's under the key's tenant."""
    caller = request.auth
    if isinstance(caller, UserPrincipal):
        return Identity(oauth_provider=caller.provider, external_id=caller.sub, email=caller.email)
    if not data.get("oauth_provider") or not data.get("external_id"):
        raise IdentityRequired()
    return identity_from(data, key_tenant_id=principal(request).tenant_id)


def _credited(verified: Verified) -> dict[str, Any]:
    return {
        "success": True,
        "credits_added": verified.purchase.uses_credited,
        "new_balance": verified.account.credits_remaining,
        "already_processed": verified.already_processed,
        "transaction_id": verified.purchase.purchase_token,
    }


IOS_REQUEST = {"transaction_id": "2000000123456789"}
CREDITED = {
    "success": True,
    "credits_added": 99,
    "new_balance": 99,
    "already_processed": False,
    "transaction_id": "2000000123456789",
}
NOT_CREDITED = {
    "success": False,
    "credits_added": 0,
    "new_balance": 0,
    "already_processed": False,
    "transaction_id": "2000000123456789",
    "error": "The purchase was refunded or voided: it is not credited.",
    "code": "purchase_voided",
}
DESCRIPTION = (
    "The service looks the transaction up with the App Store Server API (Production first; the "
    "Sandbox only when APPLE_STOREKIT_SANDBOX_FALLBACK is on), verifies Apple's signature, "
    "bundle id and environment, and credits the product's uses exactly once per transactionId. "
)


class UserAppStoreVerifyView(APIView):
    required_scope = Scope.READ
    user_tokens_allowed = True

    @extend_schema(
        operation_id="user_apple_storekit_verify",
        # Only the user token: an API key is refused here (spectacular takes requirement dicts).
        auth=[{"UserToken": []}],  # type: ignore[list-item]
        summary="Credit an App Store purchase (the iOS app; once per transaction)",
        description=DESCRIPTION
        + "User token only (Authorization: Bearer <Apple or Google ID token>): the account is the "
        "token's. The iOS app finishes the StoreKit transaction only on success true, so a "
        "transaction that is not creditable (unknown, refunded, not this app's, not a store "
        "product, another account's) is 200 with success false, an error and its code; a replay "
        "is success true with already_processed true.",
        request=serializers.UserAppStoreVerifyIn,
        responses={
            200: serializers.AppStoreVerifyOut,
            403: error("Not a user token, or a closed account."),
            503: error("The App Store unreachable or not configured (see Retry-After)."),
            **{k: v for k, v in COMMON_ERRORS.items() if k not in (403, 503)},
        },
        examples=[
            OpenApiExample("Request (the iOS app's)", request_only=True, value=IOS_REQUEST),
            OpenApiExample("Credited", response_only=True, status_codes=["200"], value=CREDITED),
            OpenApiExample(
                "Replay", response_only=True, status_codes=["200"], value={**CREDITED, "already_processed": True}
            ),
            OpenApiExample("Not creditable", response_only=True, status_codes=["200"], value=NOT_CREDITED),
        ],
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.auth, UserPrincipal):
            raise UserTokenRequired("This route takes a user's ID token (Authorization: Bearer), not an API key.")
        data = validated(serializers.UserAppStoreVerifyIn, request)
        identity = _identity(request, data)
        try:
            verified = app_store_verify(
                identity=identity, transaction_id=data["transaction_id"], actor=principal(request).actor
            )
        except NOT_CREDITABLE as refused:
            account = account_for_identity(identity=identity)
            return Response(
                {
                    "success": False,
                    "credits_added": 0,
                    "new_balance": account.credits_remaining if account is not None else 0,
                    "already_processed": False,
                    "transaction_id": data["transaction_id"],
                    "error": refused.detail,
                    "code": "unknown_product" if isinstance(refused, UnknownStoreProduct) else refused.code,
                }
            )
        return Response(_credited(verified))


class AppStoreVerifyView(APIView):
    required_scope = Scope.WRITE
    user_tokens_allowed = True

    @extend_schema(
        operation_id="apple_storekit_verify",
        summary="Credit an App Store purchase (the agent; once per transaction)",
        description=DESCRIPTION
        + "With an API key (write) the identity is the body's; with a user's ID token it is the "
        "token's and the body's identity fields are ignored. A replay from the same account is "
        "200 with already_processed true and the original credits_added.",
        request=serializers.AppStoreVerifyIn,
        responses={
            200: serializers.AppStoreVerifyOut,
            400: error(
                "purchase_not_found (Apple knows no such transaction), purchase_voided (refunded or "
                "revoked), purchase_invalid (not signed for this app and environment), or malformed JSON."
            ),
            409: error("The transaction was already credited to another account."),
            422: error("Not a store product of the App Store, or a malformed body."),
            503: error("The App Store unreachable or not configured (see Retry-After)."),
            **{k: v for k, v in COMMON_ERRORS.items() if k not in (400, 422, 503)},
        },
        examples=[
            OpenApiExample(
                "Request (an agent's)",
                request_only=True,
                value={"oauth_provider": "oauth:apple", "external_id": "001234.abcd.5678", **IOS_REQUEST},
            ),
            OpenApiExample("Credited", response_only=True, status_codes=["200"], value=CREDITED),
            OpenApiExample(
                "Refunded",
                response_only=True,
                status_codes=["400"],
                value={"detail": NOT_CREDITED["error"], "code": "purchase_voided"},
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        data = validated(serializers.AppStoreVerifyIn, request)
        verified = app_store_verify(
            identity=_identity(request, data), transaction_id=data["transaction_id"], actor=principal(request).actor
        )
        return Response(_credited(verified))


class AppStoreNotificationView(APIView):
    """App Store Server Notifications V2: trusted by Apple's signature alone, no API key."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="apple_storekit_notifications",
        auth=[],  # no credentials: Apple's signature on the payload is what is checked
        summary="App Store Server Notifications V2",
        description=(
            "The signedPayload is verified against APPLE_STOREKIT_ROOT_CERTIFICATES for our bundle id "
            "and environment. REFUND and REVOKE take the transaction's credit back (capped by what "
            "is left, the shortfall recorded and flagged); REFUND_REVERSED gives back what was "
            "taken. News older than what a purchase already holds (Apple's signedDate) changes "
            "nothing, so any delivery order ends in the same balance; a transaction refunded before "
            "anyone verified it is credited only if newer news says it is no longer revoked. "
            "De-duplicated by notificationUUID; other types answer 200 ignored."
        ),
        request=serializers.AppStoreNotificationIn,
        responses={
            200: NotificationOut,
            400: error("Not a notification body (no signedPayload)."),
            401: error("Not signed by the configured chain, or for another bundle or environment."),
            503: error("The App Store is not configured on this server."),
        },
        examples=[
            OpenApiExample(
                "Notification", request_only=True, value={"signedPayload": "eyJhbGciOiJFUzI1NiIsIng1YyI6..."}
            ),
            OpenApiExample("Handled", response_only=True, value={"received": True, "outcome": "reversed"}),
        ],
    )
    def post(self, request: Request) -> Response:
        body = serializers.AppStoreNotificationIn(data=request.data)
        if not body.is_valid():
            raise BadNotification("Not an App Store Server Notification (a JSON object with signedPayload).")
        try:
            notification = app_store.notification(body.validated_data["signedPayload"])
        except app_store.AppStoreSignatureInvalid:
            raise NotificationSignatureInvalid(
                "The notification is not signed by Apple for this app and environment."
            ) from None
        if not notification.notification_uuid:
            raise BadNotification("The notification has no notificationUUID.")
        outcome = app_store_notification_apply(notification=notification)
        return Response({"received": True, "outcome": outcome})

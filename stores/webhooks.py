"""Google Play Real-time developer notifications, as Pub/Sub pushes them.

A push is trusted only with its OIDC token: RS256, signed by one of Google's keys
(GOOGLE_OAUTH_JWKS_URL, through the PyJWT key-set client ID tokens use), issued by Google, for our
audience (GOOGLE_PLAY_PUBSUB_AUDIENCE), by our push service account
(GOOGLE_PLAY_PUBSUB_SERVICE_ACCOUNT, a verified email). Pub/Sub delivers at least once: a
message id already handled is answered without doing anything again, and the void itself
is idempotent on the purchase token anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework import serializers

from accounts.id_tokens import jwks_client
from billing_site.errors import BillingError, ServiceUnavailable
from stores import metrics
from stores.models import Store, StoreNotification
from stores.services import google_play_void

logger = logging.getLogger(__name__)

GOOGLE_ISSUERS = ["https://accounts.google.com", "accounts.google.com"]


class BadNotification(BillingError):
    status_code = 400
    code = "invalid_notification"


class NotificationOut(serializers.Serializer):
    received = serializers.BooleanField()
    outcome = serializers.CharField(help_text="reversed, before_credit, duplicate, ignored, test.")


class PushUnauthorized(BillingError):
    """401 (with its challenge): the view has no DRF authentication class to make one."""

    status_code = 401
    code = "invalid_token"

    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _unauthorized(detail: str) -> PushUnauthorized:
    return PushUnauthorized(detail)


def verify_push_token(authorization: str) -> dict[str, Any]:
    """The push's verified OIDC claims; 401 for any bad token, 503 when Google's keys are unreachable."""
    audience = settings.GOOGLE_PLAY_PUBSUB_AUDIENCE
    email = settings.GOOGLE_PLAY_PUBSUB_SERVICE_ACCOUNT
    if not audience or not email:
        # No push token can be valid: nothing says whose or for whom (and no subscription
        # should point here). Logged, so an operator who forgot the settings sees it.
        logger.warning("google play notification refused: GOOGLE_PLAY_PUBSUB_* not configured")
        raise _unauthorized("Google Play notifications are not configured on this server.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        raise _unauthorized("A Pub/Sub OIDC token is required (Authorization: Bearer).")
    client = jwks_client(settings.GOOGLE_OAUTH_JWKS_URL)  # the key-set cache ID tokens use
    unavailable = ServiceUnavailable("Google's signing keys cannot be fetched; try again later.")
    try:
        kid = jwt.get_unverified_header(token.strip()).get("kid")
    except jwt.PyJWTError:
        raise _unauthorized("The push token is malformed.") from None
    if not isinstance(kid, str) or not kid:
        raise _unauthorized("The push token names no signing key.")
    try:
        client.get_signing_keys()  # the cached set, else one fetch: a failure here is Google's
    except (jwt.PyJWTError, ValueError):
        raise unavailable from None
    try:
        key = client.get_signing_key(kid)  # an unknown kid refetches, at most once per cooldown
    except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError, ValueError):
        raise unavailable from None
    except jwt.PyJWTError:
        raise _unauthorized("The push token is not signed by Google.") from None
    try:
        claims = jwt.decode(
            token.strip(),
            key.key,
            algorithms=["RS256"],
            audience=audience,
            issuer=GOOGLE_ISSUERS,
            leeway=60,
            options={"require": ["exp", "iat", "iss", "aud", "email"]},
        )
    except jwt.PyJWTError:
        raise _unauthorized("The push token is invalid or expired.") from None
    if claims.get("email") != email or claims.get("email_verified") is False:
        raise _unauthorized("The push token is not from the configured push service account.")
    return claims


def _developer_notification(data: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        raise BadNotification("message.data is not base64 JSON.") from None
    if not isinstance(decoded, dict):
        raise BadNotification("message.data is not a DeveloperNotification.")
    return decoded


def handle_notification(*, message_id: str, data: str) -> str:
    """Handle one DeveloperNotification once; returns what became of it."""
    if StoreNotification.objects.filter(store=Store.GOOGLE_PLAY, message_id=message_id).exists():
        metrics.observe_notification(store=Store.GOOGLE_PLAY, outcome="duplicate")
        return "duplicate"
    notification = _developer_notification(data)
    voided = notification.get("voidedPurchaseNotification")
    token = ""
    package = notification.get("packageName")
    if "testNotification" in notification:
        kind, outcome = "test", "test"
    elif isinstance(package, str) and package not in settings.GOOGLE_PLAY_PACKAGE_NAMES:
        kind, outcome = "other_package", "ignored"  # another app's topic shared with ours
    elif isinstance(voided, dict):
        kind = "voided_purchase"
        named = voided.get("purchaseToken")
        if not isinstance(named, str) or not named or len(named) > 4096:
            raise BadNotification("voidedPurchaseNotification without a purchaseToken.")
        token = named
        order_id = voided.get("orderId")
        _, outcome = google_play_void(
            purchase_token=token,
            order_id=order_id if isinstance(order_id, str) else "",
            source=f"rtdn:{message_id}",
        )
    else:
        # Purchases are credited when the app verifies them; subscriptions are not sold.
        kind = next((k for k in notification if k.endswith("Notification")), "unknown")[:64]
        outcome = "ignored"
    try:
        with transaction.atomic():
            StoreNotification.objects.create(
                store=Store.GOOGLE_PLAY, message_id=message_id, kind=kind, purchase_token=token, outcome=outcome
            )
    except IntegrityError:
        outcome = "duplicate"  # a parallel delivery of the same message recorded it first
    logger.info("google play notification", extra={"message_id": message_id, "notification": kind, "outcome": outcome})
    metrics.observe_notification(store=Store.GOOGLE_PLAY, outcome=outcome)
    return outcome

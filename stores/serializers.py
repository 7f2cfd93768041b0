"""Input and output shapes of the store routes."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from billing_site.fields import LenientEmailField, TextField, identifier, optional_identifier


class GooglePlayVerifyIn(serializers.Serializer):
    """The agent's body. With a user token the identity comes from the token and the body's
    identity fields are ignored; with an API key they are required."""

    oauth_provider = optional_identifier(help_text='Required with an API key, e.g. "oauth:google".')
    external_id = optional_identifier(help_text="Required with an API key: the user's OAuth id.")
    tenant_id = optional_identifier(help_text="Tenant (B2B), with an API key.")
    email = LenientEmailField(help_text="Recorded on the account when it is a valid email.")
    customer_email = LenientEmailField(help_text="The same, under the name the other routes use.")
    display_name = TextField(max_length=255, required=False, allow_null=True, allow_blank=True, help_text="Ignored.")
    purchase_token = TextField(max_length=4096, help_text="The purchase token from Google Play Billing.")
    product_id = identifier(help_text='The Play product id, e.g. "credits_100".')
    package_name = identifier(help_text='The app\'s package, e.g. "ai.ciris.mobile".')


class GooglePlayVerifyOut(serializers.Serializer):
    success = serializers.BooleanField()
    credits_added = serializers.IntegerField(help_text="Uses the purchase added (the original's on a replay).")
    new_balance = serializers.IntegerField(help_text="The account's credits_remaining (uses) now.")
    already_processed = serializers.BooleanField(help_text="True on a replay of a token already credited.")
    order_id = serializers.CharField(help_text="Google's order id (GPA.…).")
    account_id = serializers.UUIDField()


class ToolPurchaseVerifyIn(serializers.Serializer):
    product_id = identifier(help_text='The Play product id of the pack, e.g. "web_search_10".')
    purchase_token = TextField(max_length=4096, help_text="The purchase token from Google Play Billing.")
    tool_name = identifier(help_text='The tool the pack is for, e.g. "web_search".')


class ToolPurchaseVerifyOut(serializers.Serializer):
    success = serializers.BooleanField()
    product_type = serializers.CharField(help_text="The tool.")
    credits_added = serializers.IntegerField(help_text="Uses of the tool the pack added.")
    new_balance = serializers.IntegerField(help_text="The tool's total_available now.")
    message = serializers.CharField()


class PubSubMessageIn(serializers.Serializer):
    # Pub/Sub's field name (DRF moves declared fields off the class; the stubs do not know).
    data = serializers.CharField(required=False, allow_blank=True, max_length=65536)  # type: ignore[assignment]
    messageId = serializers.CharField(max_length=255)
    message_id = serializers.CharField(required=False, max_length=255)
    publishTime = serializers.CharField(required=False, max_length=64)


class PubSubPushIn(serializers.Serializer):
    """A Pub/Sub push: `message.data` is the base64 DeveloperNotification."""

    message = PubSubMessageIn()
    subscription = serializers.CharField(required=False, max_length=512)


def google_play_verify_out(*, purchase: Any, account: Any, already_processed: bool) -> dict[str, Any]:
    return {
        "success": True,
        "credits_added": purchase.uses_credited,
        "new_balance": account.credits_remaining,
        "already_processed": already_processed,
        "order_id": purchase.order_id,
        "account_id": str(account.pk),
    }


def transaction_id_field(**kwargs: Any) -> TextField:
    return TextField(
        max_length=32,
        validators=[RegexValidator(r"^[0-9]+\Z", "A StoreKit transaction id: decimal digits, as a string.")],
        help_text='StoreKit 2\'s transaction id, as a string, e.g. "2000000123456789".',
        **kwargs,
    )


class UserAppStoreVerifyIn(serializers.Serializer):
    """The iOS app's body (the identity is the ID token's)."""

    transaction_id = transaction_id_field()


class AppStoreVerifyIn(serializers.Serializer):
    """With an API key the identity is the body's; with a user token it is the token's."""

    oauth_provider = optional_identifier(help_text='Required with an API key, e.g. "oauth:apple".')
    external_id = optional_identifier(help_text="Required with an API key: the user's OAuth id.")
    tenant_id = optional_identifier(help_text="Tenant (B2B), with an API key.")
    transaction_id = transaction_id_field()


class AppStoreVerifyOut(serializers.Serializer):
    success = serializers.BooleanField(help_text="The iOS app finishes the transaction only when true.")
    credits_added = serializers.IntegerField(help_text="Uses the purchase added (the original's on a replay), else 0.")
    new_balance = serializers.IntegerField(help_text="The account's credits_remaining (uses) now.")
    already_processed = serializers.BooleanField(help_text="True on a replay of a transaction already credited.")
    transaction_id = serializers.CharField()
    error = serializers.CharField(required=False, help_text="Why not (only when success is false).")
    code = serializers.CharField(
        required=False,
        help_text="purchase_not_found, purchase_voided, purchase_invalid, purchase_of_another_account or "
        "unknown_product.",
    )


class AppStoreNotificationIn(serializers.Serializer):
    """App Store Server Notifications V2: one JWS signed with Apple's chain."""

    signedPayload = serializers.CharField(max_length=65536)  # Apple's field name

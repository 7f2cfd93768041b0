"""Input and output shapes of the purchase endpoints."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from accounts.serializers import IdentityIn
from billing_site.fields import StrictIntegerField, optional_identifier
from purchases.models import Purchase, PurchaseStatus
from purchases.packs import MAX_QUANTITY
from purchases.settlement import credit_taken_back


class PurchaseIn(IdentityIn):
    """The guide's purchase request (identity and customer_email); return_url is accepted and ignored."""

    quantity = StrictIntegerField(
        min_value=1, max_value=MAX_QUANTITY, required=False, default=1, help_text="Packs to buy (default 1)."
    )
    idempotency_key = optional_identifier(
        help_text="Optional: a retry with the same key returns the same purchase instead of a second payment."
    )


class PurchaseOut(serializers.ModelSerializer):
    payment_id = serializers.CharField(source="stripe_payment_intent_id", help_text="The Stripe PaymentIntent id.")
    purchase_id = serializers.UUIDField(source="id")
    account_id = serializers.UUIDField()
    uses_purchased = serializers.IntegerField(source="uses")
    publishable_key = serializers.SerializerMethodField()

    class Meta:
        model = Purchase
        fields = [
            "payment_id",
            "purchase_id",
            "account_id",
            "client_secret",
            "amount_minor",
            "currency",
            "uses_purchased",
            "publishable_key",
            "status",
            "created_at",
        ]

    def get_publishable_key(self, purchase: Purchase) -> str:
        return settings.STRIPE_PUBLISHABLE_KEY


def _uses_kept(purchase: Purchase) -> int:
    """Uses the purchase still adds: its uses less the share refunded or charged back."""
    if purchase.credited_at is None:
        return 0
    kept = purchase.credit_minor - credit_taken_back(purchase)
    return purchase.uses * kept // purchase.credit_minor if purchase.credit_minor else 0


class PurchaseStatusOut(serializers.Serializer):
    """The guide's status answer: credits_added and balance_after are in uses.

    After a refund or chargeback, status is "refunded" or "partially_refunded",
    credits_added is net of the credit taken back, and succeeded is false once the whole
    payment was taken back.
    """

    payment_id = serializers.CharField(source="stripe_payment_intent_id")
    purchase_id = serializers.UUIDField(source="id")
    account_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=PurchaseStatus.choices)
    succeeded = serializers.SerializerMethodField()
    credits_added = serializers.SerializerMethodField(
        help_text="Uses this purchase added (0 until credited), less those refunded or charged back."
    )
    credits_refunded = serializers.SerializerMethodField(help_text="Uses taken back by refunds and chargebacks.")
    balance_after = serializers.SerializerMethodField(
        help_text="The account's paid balance in uses now (null until credited)."
    )
    amount_minor = serializers.IntegerField()
    currency = serializers.CharField()
    uses_purchased = serializers.IntegerField(source="uses")
    refunded_minor = serializers.IntegerField()
    disputed_minor = serializers.IntegerField(help_text="Amount taken back by a chargeback.")
    created_at = serializers.DateTimeField()
    credited_at = serializers.DateTimeField(allow_null=True)

    def get_succeeded(self, purchase: Purchase) -> bool:
        return purchase.credited_at is not None and purchase.status != PurchaseStatus.REFUNDED

    def get_credits_added(self, purchase: Purchase) -> int:
        return _uses_kept(purchase)

    def get_credits_refunded(self, purchase: Purchase) -> int:
        return purchase.uses - _uses_kept(purchase) if purchase.credited_at is not None else 0

    def get_balance_after(self, purchase: Purchase) -> int | None:
        return purchase.account.credits_remaining if purchase.credited_at is not None else None

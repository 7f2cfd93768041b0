"""Purchases made in app stores: the products staff sell there, and each purchase, once.

A StorePurchase is keyed by (store, purchase token): the unique constraint, hit inside the
credit transaction, is what makes any number of verifications of one token credit once. A
refund (Google's voided purchase) may arrive before the purchase is verified: the row is
then written voided, with no account, and the token can never be credited afterwards. An
App Store row (the token is Apple's transactionId) follows Apple's latest signed news instead,
since Apple can reverse a refund: credited iff an account verified it and that news says
it is not revoked.
"""

from __future__ import annotations

import uuid

from django.db import models


class Store(models.TextChoices):
    GOOGLE_PLAY = "google_play", "Google Play"
    APP_STORE = "app_store", "App Store"


class Grants(models.TextChoices):
    CREDIT = "credit", "Uses of credit (the main balance)"
    TOOL = "tool", "Uses of a tool (a tool pack)"


class StoreProduct(models.Model):
    """A product sold in a store and what buying it grants. Data, not code: staff edit it."""

    store = models.CharField(max_length=16, choices=Store.choices)
    product_id = models.CharField(max_length=150, help_text="The store's product id, e.g. credits_100.")
    grants = models.CharField(max_length=8, choices=Grants.choices, default=Grants.CREDIT)
    uses = models.PositiveIntegerField(help_text="Uses of credit, or of the tool, one purchase adds.")
    tool = models.ForeignKey(
        "tools.ToolProduct",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="store_products",
        help_text="For a tool pack: the tool whose uses it adds.",
    )
    active = models.BooleanField(default=True, help_text="Inactive products are refused (422).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["store", "product_id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "product_id"], name="storeproduct_unique_store_product"),
            models.CheckConstraint(condition=models.Q(uses__gt=0), name="storeproduct_uses_gt_0"),
            models.CheckConstraint(
                condition=models.Q(grants="credit", tool__isnull=True) | models.Q(grants="tool", tool__isnull=False),
                name="storeproduct_tool_iff_tool_pack",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_store_display()} {self.product_id}"


class PurchaseState(models.TextChoices):
    CREDITED = "credited", "Credited"
    VOIDED = "voided", "Voided (refunded; credit taken back)"


class ConsumeState(models.TextChoices):
    PENDING = "pending", "Not consumed yet"
    CONSUMED = "consumed", "Consumed"
    FAILED = "failed", "Consume failed (retried)"
    NOT_NEEDED = "not_needed", "Never credited: nothing to consume"


class StorePurchase(models.Model):
    """One store purchase token: credited once, and taken back once if the store voids it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    store = models.CharField(max_length=16, choices=Store.choices)
    purchase_token = models.TextField()
    package_name = models.CharField(max_length=255, blank=True, default="")
    order_id = models.CharField(max_length=255, blank=True, default="")
    # Empty for a purchase voided before anyone verified it (it is never credited then).
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="store_purchases"
    )
    product = models.ForeignKey(StoreProduct, null=True, blank=True, on_delete=models.PROTECT, related_name="purchases")
    state = models.CharField(max_length=16, choices=PurchaseState.choices)
    uses_credited = models.IntegerField(default=0, help_text="Uses the purchase added (credit or tool uses).")
    credit_minor = models.BigIntegerField(default=0, help_text="Credit minor units added to the balance.")
    credit_entry = models.OneToOneField(
        "ledger.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="store_purchase_credited",
    )
    consume_state = models.CharField(max_length=16, choices=ConsumeState.choices, default=ConsumeState.PENDING)
    consume_attempts = models.IntegerField(default=0)
    consume_error = models.TextField(blank=True, default="")
    consumed_at = models.DateTimeField(null=True, blank=True)
    # The reversal: what the void took back and what it could not (already spent).
    voided_at = models.DateTimeField(null=True, blank=True)
    void_source = models.CharField(max_length=255, blank=True, default="")
    reversed_minor = models.BigIntegerField(default=0)
    reversed_uses = models.IntegerField(default=0, help_text="Tool uses taken back (tool packs).")
    shortfall_minor = models.BigIntegerField(default=0)
    shortfall_uses = models.IntegerField(default=0)
    reversal_entry = models.OneToOneField(
        "ledger.LedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="store_purchase_reversed",
    )
    # The App Store's news of the transaction (the lookup at a verify, each notification), applied
    # only when signed later than the news applied before: any delivery order converges.
    store_revoked = models.BooleanField(default=False, help_text="The store's latest news: refunded or revoked.")
    news_signed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the store signed the latest news applied (older news is ignored)."
    )
    actor = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One token, one purchase, one credit: parallel verifications meet here.
            models.UniqueConstraint(fields=["store", "purchase_token"], name="storepurchase_unique_store_token"),
            models.CheckConstraint(
                condition=models.Q(state="voided") | models.Q(account__isnull=False, product__isnull=False),
                name="storepurchase_credited_has_account",
            ),
            models.CheckConstraint(
                condition=models.Q(reversed_minor__gte=0, shortfall_minor__gte=0, reversed_uses__gte=0)
                & models.Q(shortfall_uses__gte=0),
                name="storepurchase_reversal_gte_0",
            ),
        ]
        indexes = [models.Index(fields=["consume_state"], name="storepurchase_consume_state")]

    def __str__(self) -> str:
        return f"{self.get_store_display()} {self.order_id or self.purchase_token[:16]}"

    @property
    def was_credited(self) -> bool:
        return self.credit_entry_id is not None


class StoreNotification(models.Model):
    """A store notification handled (Pub/Sub message id): a redelivery is answered, not redone."""

    store = models.CharField(max_length=16, choices=Store.choices)
    message_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=64)
    purchase_token = models.TextField(blank=True, default="")
    outcome = models.CharField(max_length=64, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["store", "message_id"], name="storenotification_unique_message"),
        ]

    def __str__(self) -> str:
        return f"{self.store} {self.kind} {self.message_id}"

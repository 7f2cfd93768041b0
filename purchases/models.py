"""A purchase of a credit pack, paid through a Stripe PaymentIntent."""

from __future__ import annotations

import uuid

from django.db import models


class PurchaseStatus(models.TextChoices):
    # Written before Stripe is called, so a crash between the two is detectable.
    CREATED = "created", "Created"
    REQUIRES_PAYMENT = "requires_payment_method", "Requires payment method"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"


class Purchase(models.Model):
    """One credit pack bought through one Stripe PaymentIntent.

    Written (status "created") before Stripe is called; the PaymentIntent id and client
    secret are stored after. Credits arrive only through the `payment_intent.succeeded`
    webhook (purchases.services.purchase_credit_from_intent), at most once: the ledger has
    a unique constraint on one purchase-kind entry per purchase.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="purchases")
    stripe_payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    client_secret = models.CharField(max_length=255, blank=True, default="")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    uses = models.IntegerField()
    # Credit units the purchase adds to the balance (uses times the use price, fixed at purchase time).
    credit_minor = models.BigIntegerField()
    # Cumulative amount Stripe refunded (the charge's amount_refunded, as last applied).
    refunded_minor = models.BigIntegerField(default=0)
    # Amount taken back by a chargeback (charge.dispute.created); Stripe allows one per charge.
    disputed_minor = models.BigIntegerField(default=0)
    # `created` (epoch seconds) of the newest refund event applied: an older charge state
    # arriving late must not undo a newer one (purchases.reversals).
    refund_event_created = models.BigIntegerField(default=0)
    status = models.CharField(max_length=32, choices=PurchaseStatus.choices, default=PurchaseStatus.CREATED)
    customer_email = models.CharField(max_length=254, blank=True, default="")
    # The Stripe Customer that carries the buyer's email (receipts); one per account, reused.
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (NULL = no key; unique when set)
    actor = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    credited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="purchase_unique_account_key",
            ),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="purchase_amount_gt_0"),
            models.CheckConstraint(condition=models.Q(refunded_minor__gte=0), name="purchase_refunded_gte_0"),
            models.CheckConstraint(condition=models.Q(disputed_minor__gte=0), name="purchase_disputed_gte_0"),
        ]

    def __str__(self) -> str:
        return f"purchase {self.id} {self.amount_minor} {self.currency} ({self.status})"

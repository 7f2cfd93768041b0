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


class ReversalKind(models.TextChoices):
    REFUND = "refund", "Refund (a Stripe Refund object)"
    DISPUTE = "dispute", "Dispute (a Stripe Dispute: chargeback or inquiry)"
    # A charge.refunded event whose charge lists no Refund objects: its amount_refunded
    # stands for the refunds we do not know one by one (keyed by the Charge id).
    CHARGE_REFUNDS = "charge_refunds", "Refunded total of a charge"


class Reversal(models.Model):
    """One Stripe Refund or Dispute against a purchase: its latest known state, and what it moved.

    The credit a purchase loses is a function of the latest state of each of its reversals
    (purchases.settlement.settle), never of the order Stripe delivered the events in. Each
    row remembers the credit it claims now (`claimed_minor`), what it really debited and
    gave back, and the part of its claim the balance could not cover (`shortfall_minor`,
    credit already spent): always claimed = debited - returned + shortfall. A give-back is
    capped by what this very row debited, so a failed refund or a won dispute never mints
    credit that no reversal took.
    """

    id = models.BigAutoField(primary_key=True)
    # Stripe's own id: re_... (Refund), dp_... / du_... (Dispute), ch_... (a charge's refunded total).
    stripe_id = models.CharField(max_length=255, unique=True)
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="reversals")
    kind = models.CharField(max_length=16, choices=ReversalKind.choices)
    # The object's amount in the payment's minor units (for CHARGE_REFUNDS: amount_refunded).
    amount_minor = models.BigIntegerField()
    stripe_status = models.CharField(max_length=32, blank=True, default="")
    # The Charge it reverses (ch_...), as its events name it.
    stripe_charge_id = models.CharField(max_length=255, blank=True, default="")
    # Whether this state takes money from us (a pending or succeeded refund, a dispute
    # with funds withdrawn or lost); inquiries and failed refunds take nothing.
    takes_funds = models.BooleanField(default=False)
    # The object's own `created` (epoch seconds): the order claims are allocated in.
    stripe_created = models.BigIntegerField(default=0)
    # How far the applied state got (status rank) and the `created` of its event: an
    # older state arriving late never replaces a newer one.
    state_rank = models.SmallIntegerField(default=0)
    state_created = models.BigIntegerField(default=0)
    state_event_id = models.CharField(max_length=255, blank=True, default="")
    # Credit units (the balance's), not payment units.
    claimed_minor = models.BigIntegerField(default=0)
    debited_minor = models.BigIntegerField(default=0)
    returned_minor = models.BigIntegerField(default=0)
    shortfall_minor = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["stripe_created", "stripe_id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_minor__gte=0), name="reversal_amount_gte_0"),
            models.CheckConstraint(condition=models.Q(returned_minor__gte=0), name="reversal_returned_gte_0"),
            models.CheckConstraint(condition=models.Q(shortfall_minor__gte=0), name="reversal_shortfall_gte_0"),
            models.CheckConstraint(
                condition=models.Q(debited_minor__gte=models.F("returned_minor")),
                name="reversal_returns_at_most_its_debit",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    claimed_minor=models.F("debited_minor") - models.F("returned_minor") + models.F("shortfall_minor")
                ),
                name="reversal_claim_is_held_plus_shortfall",
            ),
        ]
        indexes = [models.Index(fields=["kind", "shortfall_minor"], name="reversal_kind_shortfall")]

    def __str__(self) -> str:
        return f"{self.kind} {self.stripe_id} {self.amount_minor} ({self.stripe_status})"

    @property
    def held_minor(self) -> int:
        """Credit this reversal debited and still keeps."""
        return self.debited_minor - self.returned_minor

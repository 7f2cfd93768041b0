"""Tool credits: products (web search, ...), each account's free allowance, and each tool use."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

PRODUCT_TYPE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
validate_product_type = RegexValidator(
    PRODUCT_TYPE_PATTERN, "Lower-case letters, digits, '_' and '-' (at most 64), e.g. web_search."
)


class ToolProduct(models.Model):
    """A tool a client pays for per use. Data, not code: add one in the admin (or a migration)."""

    product_type = models.CharField(max_length=64, unique=True, validators=[validate_product_type])
    name = models.CharField(max_length=100, blank=True, default="")
    # NULL follows BILLING_USE_PRICE_MINOR, so an operator who prices a use at 1 prices a
    # search at 1 too without touching the product.
    price_minor = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Credit minor units taken from the paid balance per use once the free allowance is spent. "
        "Empty: one use's price (BILLING_USE_PRICE_MINOR).",
    )
    free_initial = models.IntegerField(default=0, help_text="Free uses on an account's first use of this tool.")
    free_daily_topup = models.IntegerField(default=0, help_text="Free uses added at the first use of each UTC day.")
    free_cap = models.IntegerField(default=0, help_text="The daily top-up never takes the free allowance above this.")
    active = models.BooleanField(default=True, help_text="Inactive products are refused (422) and not listed.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product_type"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_minor__isnull=True) | models.Q(price_minor__gt=0),
                name="toolproduct_price_gt_0",
            ),
            models.CheckConstraint(
                condition=models.Q(free_initial__gte=0, free_daily_topup__gte=0, free_cap__gte=0),
                name="toolproduct_free_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return self.product_type

    @property
    def effective_price_minor(self) -> int:
        return self.price_minor if self.price_minor is not None else settings.BILLING_USE_PRICE_MINOR


class ToolAllowance(models.Model):
    """An account's free uses of one product. Changed only by tools.services, with the
    account row locked first and then this one (always in that order)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="tool_allowances")
    product = models.ForeignKey(ToolProduct, on_delete=models.PROTECT, related_name="allowances")
    free_remaining = models.IntegerField(default=0)
    # Uses bought in store packs: spent after the free allowance, before the paid balance,
    # never capped nor topped up.
    purchased_remaining = models.IntegerField(default=0)
    # The UTC day of the initial grant or of the last daily top-up: a top-up happens at the
    # first use on a later day, once (the check runs on the locked row).
    topped_up_on = models.DateField()
    total_uses = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["account", "product"], name="toolallowance_unique_account_product"),
            models.CheckConstraint(condition=models.Q(free_remaining__gte=0), name="toolallowance_free_gte_0"),
            models.CheckConstraint(
                condition=models.Q(purchased_remaining__gte=0), name="toolallowance_purchased_gte_0"
            ),
            models.CheckConstraint(condition=models.Q(total_uses__gte=0), name="toolallowance_uses_gte_0"),
        ]
        permissions = [("grant_tool_allowance", "Can grant free tool uses")]

    def __str__(self) -> str:
        return f"{self.product} for {self.account}"


class ToolCharge(models.Model):
    """One tool use, with the answer it got: a retry with its key gets this answer again."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="tool_charges")
    product = models.ForeignKey(ToolProduct, on_delete=models.PROTECT, related_name="charges")
    idempotency_key = models.CharField(max_length=255)
    used_free = models.BooleanField()
    used_purchased = models.BooleanField(default=False, help_text="Paid by a use bought in a store pack.")
    cost_minor = models.BigIntegerField(help_text="Taken from the paid balance (0 for a free use).")
    free_remaining_after = models.IntegerField()
    purchased_remaining_after = models.IntegerField(default=0)
    paid_credits_after = models.BigIntegerField()
    total_uses_after = models.IntegerField()
    ledger_entry = models.OneToOneField("ledger.LedgerEntry", on_delete=models.PROTECT, related_name="tool_charge")
    actor = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One key, one use, whatever the product: the same key for another product is a 422.
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="toolcharge_unique_account_key"),
            models.CheckConstraint(condition=models.Q(cost_minor__gte=0), name="toolcharge_cost_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.product} use {self.id}"

    @property
    def used_paid(self) -> bool:
        return not self.used_free

    @property
    def has_credit(self) -> bool:
        return self.free_remaining_after + self.purchased_remaining_after + self.paid_credits_after > 0

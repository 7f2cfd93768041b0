"""The append-only ledger: every change of a balance or free-use count is one entry."""

from __future__ import annotations

from typing import Any

from django.db import models


class EntryKind(models.TextChoices):
    FREE_USES_GRANTED = "free_uses_granted", "Free uses granted"
    CHARGE = "charge", "Charge"
    PURCHASE = "purchase", "Purchase"
    GRANT = "grant", "Grant"
    REFUND = "refund", "Refund"
    REFUND_REVERSAL = "refund_reversal", "Refund reversal (a failed or reduced refund gives credit back)"
    CHARGEBACK = "chargeback", "Chargeback (a dispute withdrew the funds)"
    CHARGEBACK_REVERSAL = "chargeback_reversal", "Chargeback reversal (a dispute won, funds reinstated)"
    ADJUSTMENT = "adjustment", "Adjustment"
    MIGRATION = "migration", "Migration"
    # Zero deltas: the account was suspended, reactivated or closed (audit trail).
    STATUS_CHANGE = "status_change", "Status change"
    # Daily free uses: the lazy top-up at the first movement of a UTC day.
    DAILY_FREE_USES_GRANTED = "daily_free_uses_granted", "Daily free uses granted"
    # Tool products (web search, ...): a paid tool use, and staff grants of a tool allowance.
    TOOL_CHARGE = "tool_charge", "Tool charge"
    TOOL_GRANT = "tool_grant", "Tool allowance granted"


class LedgerEntry(models.Model):
    """One movement of money or free uses, with the balances it left behind.

    Invariant (checked by `manage.py reconcile`): an account's balance is the sum of its
    balance deltas, its free uses the sum of its free-use deltas and its daily free uses
    the sum of its daily free-use deltas. Entries are never
    updated or deleted: a correction is a new entry.
    """

    # A monotonically increasing id gives the ledger a stable newest-first order for
    # cursor pagination, which created_at alone (ties within a microsecond) would not.
    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="ledger_entries")
    kind = models.CharField(max_length=32, choices=EntryKind.choices)
    balance_delta_minor = models.BigIntegerField(default=0)
    free_uses_delta = models.IntegerField(default=0)
    balance_after_minor = models.BigIntegerField()
    free_uses_after = models.IntegerField()
    # Daily free uses (a separate pool, spent first): their own delta and count after, so
    # `reconcile` proves them like the other counts.
    daily_free_uses_delta = models.IntegerField(default=0, db_default=0)
    daily_free_uses_after = models.IntegerField(default=0, db_default=0)
    currency = models.CharField(max_length=3)
    charge = models.ForeignKey(
        "charges.Charge", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    purchase = models.ForeignKey(
        "purchases.Purchase", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    # Who moved the money: "api_key:<prefix>", "staff:<username>", "stripe:<event id>", "command:<name>".
    actor = models.CharField(max_length=255)
    reason = models.TextField(blank=True, default="")
    # Grants and adjustments are idempotent per account on this key (None for other kinds).
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (NULL = no key; unique when set)
    # Grants keep what was asked, so a replay with other parameters can be told apart.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # Anything worth keeping about the movement (e.g. a refund's shortfall, the Stripe ids).
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="ledger_unique_account_idempotency_key",
            ),
            # A purchase is credited at most once, whatever Stripe delivers.
            models.UniqueConstraint(
                fields=["purchase"],
                condition=models.Q(kind="purchase"),
                name="ledger_one_credit_per_purchase",
            ),
            models.CheckConstraint(condition=models.Q(balance_after_minor__gte=0), name="ledger_balance_after_gte_0"),
            models.CheckConstraint(condition=models.Q(free_uses_after__gte=0), name="ledger_free_uses_after_gte_0"),
            models.CheckConstraint(
                condition=models.Q(daily_free_uses_after__gte=0), name="ledger_daily_free_uses_after_gte_0"
            ),
        ]
        indexes = [models.Index(fields=["account", "-id"], name="ledger_account_newest")]

    def __str__(self) -> str:
        return f"{self.kind} {self.balance_delta_minor:+d} / {self.free_uses_delta:+d} free ({self.account_id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A guard, not business logic: the ledger is append-only.
        if not self._state.adding:
            raise ValueError("Ledger entries are append-only; write a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("Ledger entries are append-only; write a correcting entry instead.")

"""A charge: one paid or free use of an agent, idempotent per account on its key."""

from __future__ import annotations

import uuid

from django.db import models


class Charge(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="charges")
    idempotency_key = models.CharField(max_length=255)
    # What the agent asked to charge. A charge paid by a free use debits nothing of it.
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=1000, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    paid_with_free_use = models.BooleanField(default=False)
    # What the paid balance was debited (0 for a free use): the ledger entry's delta.
    debited_minor = models.BigIntegerField(default=0)
    balance_after_minor = models.BigIntegerField()
    free_uses_after = models.IntegerField()
    actor = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Idempotency lives here: any number of concurrent requests with one key make one charge.
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="charge_unique_account_key"),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="charge_amount_gt_0"),
            models.CheckConstraint(condition=models.Q(debited_minor__gte=0), name="charge_debited_gte_0"),
        ]

    def __str__(self) -> str:
        return f"charge {self.id} {self.amount_minor} {self.currency}"

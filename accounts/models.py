"""Accounts (one per end user) and the API keys agents use to reach them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class AccountStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


def default_currency() -> str:
    return settings.BILLING_CURRENCY


class Account(models.Model):
    """An end user of an agent, identified by (tenant, OAuth provider, external id).

    Balances change only through `ledger.services.ledger_post`, with this row locked.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # "" when the caller names no tenant, so the unique constraint also covers that case
    # (NULLs would never collide and two accounts could be made for one user).
    tenant_id = models.CharField(max_length=255, blank=True, default="")
    oauth_provider = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255)
    wa_id = models.CharField("WebAgent id (last seen)", max_length=255, blank=True, default="")
    email = models.CharField(max_length=254, blank=True, default="")
    status = models.CharField(max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    currency = models.CharField(max_length=3, default=default_currency)
    balance_minor = models.BigIntegerField(default=0)
    free_uses_remaining = models.IntegerField(default=0)
    total_uses = models.IntegerField(default=0)
    has_paid = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "oauth_provider", "external_id"], name="account_unique_identity"
            ),
            models.CheckConstraint(condition=models.Q(balance_minor__gte=0), name="account_balance_gte_0"),
            models.CheckConstraint(condition=models.Q(free_uses_remaining__gte=0), name="account_free_uses_gte_0"),
            models.CheckConstraint(condition=models.Q(total_uses__gte=0), name="account_total_uses_gte_0"),
        ]
        permissions = [
            ("grant_credits", "Can grant credits and free uses"),
            ("suspend_account", "Can suspend, reactivate and close accounts"),
        ]

    def __str__(self) -> str:
        tenant = f"{self.tenant_id}/" if self.tenant_id else ""
        return f"{tenant}{self.oauth_provider}:{self.external_id}"

    @property
    def plan_name(self) -> str:
        return "pro" if self.has_paid else "free"

    @property
    def credits_remaining(self) -> int:
        """Whole uses the paid balance buys (an integer: real clients parse it as one)."""
        return self.balance_minor // settings.BILLING_USE_PRICE_MINOR

    @property
    def is_active(self) -> bool:
        return self.status == AccountStatus.ACTIVE


class Scope(models.TextChoices):
    READ = "read", "Read (credit checks, account reads)"
    WRITE = "write", "Write (charges, purchases, accounts)"
    ADMIN = "admin", "Admin (credit grants and adjustments)"


# Each scope includes the ones below it: a key that may charge may also check credit.
SCOPE_RANK = {Scope.READ: 1, Scope.WRITE: 2, Scope.ADMIN: 3}


class ApiKey(AbstractAPIKey):
    """An agent's key: hashed with SHA-512 (fast for high-entropy keys), found by prefix."""

    permissions = models.CharField(
        max_length=64, default="read", help_text="Comma-separated scopes: read, write, admin."
    )
    tenant_id = models.CharField(
        max_length=255, blank=True, default="", help_text="If set, the key sees only this tenant's accounts."
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.permissions.split(",") if p.strip())

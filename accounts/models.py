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


# Which status an account may move to from which (a closed account stays closed). The one
# table of status rules: the check, charges, grants, the admin and the commands all ask
# the Account methods below, which read it.
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    AccountStatus.ACTIVE: frozenset({AccountStatus.SUSPENDED}),
    AccountStatus.SUSPENDED: frozenset({AccountStatus.ACTIVE}),
    AccountStatus.CLOSED: frozenset({AccountStatus.ACTIVE, AccountStatus.SUSPENDED}),
}


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
    # Daily free uses (BILLING_DAILY_FREE_USES): what is left of the UTC day this row was
    # last topped up on. A row from an earlier day is stale: its count is the full daily
    # allowance, written (with a ledger entry) under the lock at the day's first charge.
    daily_free_uses_remaining = models.IntegerField(default=0, db_default=0)
    daily_free_uses_day = models.DateField(null=True, blank=True)
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
            models.CheckConstraint(
                condition=models.Q(daily_free_uses_remaining__gte=0), name="account_daily_free_uses_gte_0"
            ),
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
        """Only an active account may be charged or report usable credit."""
        return self.status == AccountStatus.ACTIVE

    @property
    def inactive_reason(self) -> str | None:
        """What a check or a refused charge says about a suspended or closed account."""
        if self.is_active:
            return None
        return "Account suspended" if self.status == AccountStatus.SUSPENDED else "Account closed"

    @property
    def takes_new_credit(self) -> bool:
        """A closed account gets no new credit from any path; only settling adjustments."""
        return self.status != AccountStatus.CLOSED

    def status_change_refusal(self, target: str) -> str | None:
        """Why this account cannot move to `target` now, or None if it may."""
        if self.status == target:
            return f"Account {self} is already {self.status}."
        if self.status not in STATUS_TRANSITIONS[target]:
            return f"Account {self} is {self.status} and cannot become {target}."
        return None


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


class RevokedToken(models.Model):
    """A user's ID token staff have revoked (a stolen phone, a leaked token).

    Stored as its SHA-256, never the token: the table names what to refuse without holding
    a credential anyone could replay.
    """

    token_sha256 = models.CharField("token SHA-256", max_length=64, unique=True)
    # Who the token named (read from it unverified when staff gave the token itself): for the list.
    subject = models.CharField(max_length=300, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(token_sha256__regex=r"^[0-9a-f]{64}$"), name="revoked_token_sha256_hex"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject or 'token'} ({self.token_sha256[:12]}…)"

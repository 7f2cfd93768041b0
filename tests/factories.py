"""Test data. Money is never written directly: funded accounts go through the services."""

from __future__ import annotations

import factory
from django.conf import settings

from accounts.identity import Identity
from accounts.models import Account, ApiKey
from accounts.services import account_get_or_create, credits_grant


class AccountFactory(factory.django.DjangoModelFactory):
    """An account row with no money (use `funded_account` for one with credit)."""

    class Meta:
        model = Account

    oauth_provider = "oauth:google"
    external_id = factory.Sequence(lambda n: f"user-{n}@example.com")


def create_api_key(permissions: str = "read,write", tenant_id: str = "", name: str = "test") -> str:
    _, key = ApiKey.objects.create_key(name=name, permissions=permissions, tenant_id=tenant_id)
    return key


def funded_account(identity: dict, *, uses: int = 0, free_uses: int | None = None) -> Account:
    """An account with `uses` paid uses, through the grant service (so the ledger agrees)."""
    ident = Identity(
        oauth_provider=identity["oauth_provider"],
        external_id=identity["external_id"],
        tenant_id=identity.get("tenant_id") or "",
    )
    account, _ = account_get_or_create(identity=ident, actor="test")
    if free_uses is not None and free_uses != account.free_uses_remaining:
        credits_grant(
            identity=ident,
            actor="test",
            reason="test setup",
            free_uses=free_uses - account.free_uses_remaining,
            kind="adjustment",
        )
    if uses:
        credits_grant(
            identity=ident, actor="test", reason="test setup", amount_minor=uses * settings.BILLING_USE_PRICE_MINOR
        )
    account.refresh_from_db()
    return account

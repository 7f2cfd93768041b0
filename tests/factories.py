"""Test data. Money is never written directly: funded accounts go through the services."""

from __future__ import annotations

from typing import Any

import factory
from django.conf import settings

from accounts.identity import Identity
from accounts.models import Account, ApiKey
from accounts.services import account_get_or_create, credits_grant
from purchases.models import Purchase


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


def staff_user(username: str = "support", *, permissions: tuple[str, ...] = (), superuser: bool = False) -> Any:
    """A staff user for the admin (password "pw"), with the named `app_label.codename` permissions."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(username=username, password="pw", is_staff=True, is_superuser=superuser)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


SUPPORT_PERMISSIONS = (
    "accounts.view_account",
    "accounts.grant_credits",
    "accounts.suspend_account",
    "ledger.view_ledgerentry",
    "charges.view_charge",
    "purchases.view_purchase",
)


def paid_purchase(
    account: Account,
    *,
    payment_intent_id: str | None = None,
    credit: bool = True,
    uses: int | None = None,
    status: str = "succeeded",
) -> Purchase:
    """A paid purchase of one pack, credited through the ledger like the webhook does (unless credit=False)."""
    from django.db import transaction
    from django.utils import timezone

    from ledger.models import EntryKind
    from ledger.services import ledger_post

    uses = uses or settings.BILLING_PACK_USES
    purchase = Purchase.objects.create(
        account=account,
        stripe_payment_intent_id=payment_intent_id,
        amount_minor=settings.BILLING_PACK_PRICE_MINOR,
        currency=settings.BILLING_CURRENCY,
        uses=uses,
        credit_minor=uses * settings.BILLING_USE_PRICE_MINOR,
        status=status,
        credited_at=timezone.now() if credit else None,
    )
    if credit:
        with transaction.atomic():
            locked = Account.objects.select_for_update().get(pk=account.pk)
            ledger_post(
                account=locked,
                kind=EntryKind.PURCHASE,
                balance_delta_minor=purchase.credit_minor,
                purchase=purchase,
                actor=f"stripe:evt_{purchase.pk.hex[:12]}",
                reason="Credit pack",
            )
    return purchase


def tool_product(product_type: str = "web_search", **fields: Any) -> Any:
    """A tool product (the original's web_search allowance unless told otherwise)."""
    from tools.models import ToolProduct

    defaults = {"free_initial": 10, "free_daily_topup": 3, "free_cap": 13, "price_minor": None, "active": True}
    return ToolProduct.objects.update_or_create(product_type=product_type, defaults={**defaults, **fields})[0]

"""Reads of purchases, scoped to what the caller's key may see."""

from __future__ import annotations

import re

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import Account
from billing_site.errors import NotFound
from purchases.models import Purchase, Reversal, ReversalKind

# Stripe object ids: letters, digits and underscores. Anything else cannot match (and a
# NUL byte would make PostgreSQL fail the query).
PAYMENT_ID = re.compile(r"[A-Za-z0-9_]{1,255}")


def purchase_for_payment(*, payment_id: str, tenant_id: str) -> Purchase:
    """The purchase paid by this PaymentIntent; a tenant-bound key sees only its tenant's (else 404)."""
    if not PAYMENT_ID.fullmatch(payment_id):
        raise NotFound("No such purchase.")
    queryset = Purchase.objects.select_related("account").filter(stripe_payment_intent_id=payment_id)
    if tenant_id:
        queryset = queryset.filter(account__tenant_id=tenant_id)
    purchase = queryset.first()
    if purchase is None:
        raise NotFound("No such purchase.")
    return purchase


def accounts_with_chargeback_shortfall() -> QuerySet[Account]:
    """The fraud signal: accounts a chargeback found with the disputed credit already spent.

    Derived from the reversals, so it clears if the dispute is won after all (its shortfall
    was never taken, and is released then); an account suspended for it stays suspended.
    """
    flagged = Reversal.objects.filter(
        purchase__account=OuterRef("pk"), kind=ReversalKind.DISPUTE, shortfall_minor__gt=0
    )
    return Account.objects.filter(Exists(flagged))

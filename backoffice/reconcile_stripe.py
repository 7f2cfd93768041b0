"""Reconciliation against Stripe (`manage.py reconcile --stripe`): succeeded PaymentIntents we
never credited, and purchase credits Stripe does not list as paid. Reads Stripe, writes nothing."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.models import Account
from backoffice.findings import (
    Discrepancy,
    grant_command,
    purchase_grant_key,
    reverse_credit_command,
    stripe_grant_key,
)
from backoffice.reconcile_purchases import purchase_credits, stand_in_keys_by_account, stand_ins
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Purchase


def stripe_client() -> Any:
    import stripe

    if not settings.STRIPE_SECRET_KEY:
        raise RuntimeError("STRIPE_SECRET_KEY is not set: cannot compare with Stripe.")
    host = getattr(settings, "STRIPE_API_HOST", "")
    kwargs: dict[str, Any] = {"base_addresses": {"api": host}} if host else {}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, **kwargs)


def succeeded_payment_intents(client: Any) -> dict[str, dict[str, Any]]:
    """Every succeeded PaymentIntent Stripe holds for this account, by id."""
    found = {}
    for intent in client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
        if intent["status"] == "succeeded":
            found[intent["id"]] = intent.to_dict()
    return found


def check_stripe(client: Any) -> list[Discrepancy]:
    """Succeeded PaymentIntents we never credited, and purchase credits Stripe does not know."""
    intents = succeeded_payment_intents(client)
    credited: set[str] = set()
    stand_in_keys = stand_in_keys_by_account()
    for purchase in purchase_credits().exclude(stripe_payment_intent_id=None):
        if purchase.credits + stand_ins(purchase, stand_in_keys) > 0:
            credited.add(purchase.stripe_payment_intent_id)
    credited.update(
        key.removeprefix("stripe:")
        for key in LedgerEntry.objects.filter(idempotency_key__startswith="stripe:").values_list(
            "idempotency_key", flat=True
        )
    )
    purchases = {
        p.stripe_payment_intent_id: p
        for p in Purchase.objects.select_related("account").filter(stripe_payment_intent_id__in=list(intents))
    }

    found = []
    for intent_id, intent in sorted(intents.items()):
        if intent_id in credited:
            continue
        amount = f"{intent.get('amount')} {str(intent.get('currency', '')).upper()}"
        purchase = purchases.get(intent_id)
        if purchase is not None:
            fixes = [
                grant_command(
                    purchase.account,
                    amount_minor=purchase.credit_minor,
                    reason=f"Reconcile: credit for purchase {purchase.pk}, paid in Stripe but never credited",
                    key=purchase_grant_key(purchase),
                )
            ]
            detail = f"succeeded in Stripe ({amount}); our purchase {purchase.pk} is {purchase.status} and uncredited"
        else:
            account = _account_from_metadata(intent)
            uses = settings.BILLING_PACK_USES
            fixes = (
                [
                    grant_command(
                        account,
                        amount_minor=uses * settings.BILLING_USE_PRICE_MINOR,
                        reason=f"Reconcile: Stripe PaymentIntent {intent_id} paid but never credited",
                        key=stripe_grant_key(intent_id),
                    )
                    + "   # check the amount paid first"
                ]
                if account
                else []
            )
            who = f" for {account}" if account else " naming no account of ours"
            detail = f"succeeded in Stripe ({amount}){who}, and we hold no purchase for it"
        found.append(Discrepancy("stripe_not_credited", f"PaymentIntent {intent_id}", detail, fixes))

    unknown = (
        LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, purchase__isnull=False)
        .exclude(purchase__stripe_payment_intent_id__in=list(intents))
        .select_related("account", "purchase")
        .order_by("id")
    )
    for entry in unknown:
        intent_id = entry.purchase.stripe_payment_intent_id or "(none)"
        found.append(
            Discrepancy(
                "credit_unknown_to_stripe",
                f"ledger entry #{entry.pk} on {entry.account}",
                f"credits purchase {entry.purchase_id} for PaymentIntent {intent_id}, "
                "which Stripe does not list as succeeded",
                [
                    reverse_credit_command(
                        entry,
                        reason=f"Reconcile: reverse credit #{entry.pk}, not paid in Stripe",
                        check_first="after checking Stripe's dashboard",
                    )
                ],
            )
        )
    return found


def _account_from_metadata(intent: dict[str, Any]) -> Account | None:
    account_id = (intent.get("metadata") or {}).get("account_id")
    if not account_id:
        return None
    try:
        return Account.objects.filter(pk=account_id).first()
    except ValidationError:  # not a UUID
        return None

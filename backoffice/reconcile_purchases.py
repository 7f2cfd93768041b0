"""Reconciliation of purchases: every paid purchase has exactly one credit of its amount,
and no purchase credit lacks its paid purchase (a manual grant may stand in for one)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Coalesce

from backoffice.findings import Discrepancy, grant_command, purchase_grant_key, reverse_credit_command
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Purchase, PurchaseStatus

# Purchases that were paid (a refund happens after the credit, so those were credited too).
PAID_STATUSES = (PurchaseStatus.SUCCEEDED, PurchaseStatus.REFUNDED, PurchaseStatus.PARTIALLY_REFUNDED)


def purchase_credits() -> Any:
    """Purchases annotated with how many purchase credits they have (stand-in grants: `stand_ins`)."""
    return Purchase.objects.select_related("account").annotate(
        credits=Count("ledger_entries", filter=Q(ledger_entries__kind=EntryKind.PURCHASE)),
        credited_minor=Coalesce(
            Sum("ledger_entries__balance_delta_minor", filter=Q(ledger_entries__kind=EntryKind.PURCHASE)), Value(0)
        ),
    )


def stand_in_keys_by_account() -> set[tuple[Any, str]]:
    """(account id, key) of every grant or adjustment that may stand in for a purchase's credit."""
    return set(
        LedgerEntry.objects.filter(
            kind__in=[EntryKind.GRANT, EntryKind.ADJUSTMENT], idempotency_key__startswith="purchase:"
        ).values_list("account_id", "idempotency_key")
    )


def stand_ins(purchase: Purchase, keys: set[tuple[Any, str]]) -> int:
    # Matched in Python with the very function that printed the fix: a key built in SQL
    # (a UUID cast to text) is hyphenated on PostgreSQL but 32 bare hex digits on SQLite,
    # so the printed fix never counted there. The key is unique per account: 0 or 1.
    return int((purchase.account_id, purchase_grant_key(purchase)) in keys)


def check_purchases() -> list[Discrepancy]:
    """Every paid purchase has exactly one credit of its amount; no credit lacks its purchase."""
    found = []
    stand_in_keys = stand_in_keys_by_account()
    for purchase in purchase_credits().filter(status__in=PAID_STATUSES).order_by("created_at"):
        credits = purchase.credits + stand_ins(purchase, stand_in_keys)
        subject = f"purchase {purchase.pk} ({purchase.stripe_payment_intent_id or 'no PaymentIntent'})"
        if credits == 0:
            found.append(
                Discrepancy(
                    "purchase_not_credited",
                    subject,
                    f"{purchase.status}, {purchase.amount_minor} {purchase.currency} paid, but {purchase.account} "
                    f"was never credited {purchase.credit_minor} minor units",
                    [
                        grant_command(
                            purchase.account,
                            amount_minor=purchase.credit_minor,
                            reason=f"Reconcile: credit for purchase {purchase.pk}, paid but never credited",
                            key=purchase_grant_key(purchase),
                        )
                    ],
                )
            )
        elif credits > 1:
            extra = purchase.credited_minor - purchase.credit_minor
            found.append(
                Discrepancy(
                    "purchase_credited_twice",
                    subject,
                    f"credited {credits} times ({purchase.credited_minor} minor units for {purchase.credit_minor})",
                    [
                        grant_command(
                            purchase.account,
                            amount_minor=-extra,
                            reason=f"Reconcile: purchase {purchase.pk} was credited more than once",
                            key=f"reconcile:double:{purchase.pk}",
                            adjustment=True,
                        )
                    ]
                    if extra > 0
                    else [],
                )
            )
        elif purchase.credits == 1 and purchase.credited_minor != purchase.credit_minor:
            found.append(
                Discrepancy(
                    "purchase_credit_amount",
                    subject,
                    f"credited {purchase.credited_minor} minor units, the purchase is for {purchase.credit_minor}",
                )
            )

    orphans = (
        LedgerEntry.objects.filter(kind=EntryKind.PURCHASE)
        .filter(Q(purchase__isnull=True) | ~Q(purchase__status__in=PAID_STATUSES))
        .filter(details__store__isnull=True)  # app-store credits: backoffice.reconcile_stores
        .select_related("account", "purchase")
        .order_by("id")
    )
    for entry in orphans:
        why = (
            "names no purchase"
            if entry.purchase_id is None
            else f"its purchase {entry.purchase_id} is {entry.purchase.status}"
        )
        found.append(
            Discrepancy(
                "credit_without_purchase",
                f"ledger entry #{entry.pk} on {entry.account}",
                f"a purchase credit of {entry.balance_delta_minor} minor units that {why}",
                [
                    reverse_credit_command(
                        entry,
                        reason=f"Reconcile: reverse purchase credit #{entry.pk} that has no paid purchase",
                        check_first="after checking the payment really failed",
                    )
                ],
            )
        )
    return found

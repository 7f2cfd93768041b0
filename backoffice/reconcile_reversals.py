"""Reconciling refunds and disputes: each Reversal against the ledger and against its Stripe object.

- the refund and chargeback entries of each purchase sum to what its reversals hold
  (debited less given back), and its reversals never claim more than its credit;
- each reversal agrees with dj-stripe's stored copy of its Refund or Dispute, when dj-stripe
  has one (it stores Disputes from their events, Refunds through their Charge);
- with `--stripe`, each reversal agrees with the object Stripe's API returns now.
A reversal that disagrees with Stripe missed (or has not yet received) an event: resending
Stripe's latest event for the object makes the webhook settle the credit from it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, Sum
from djstripe.models import Dispute as StripeDispute
from djstripe.models import Refund as StripeRefund

from backoffice.findings import Discrepancy
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Purchase, Reversal, ReversalKind
from purchases.reversal_states import charge_refund_status

REVERSAL_ENTRY_KINDS = (
    EntryKind.REFUND,
    EntryKind.REFUND_REVERSAL,
    EntryKind.CHARGEBACK,
    EntryKind.CHARGEBACK_REVERSAL,
)
# Rows the data migration made for refunds whose Stripe ids were never kept.
LEGACY_PREFIX = "legacy-"


def _resend(stripe_id: str) -> str:
    return (
        f"resend Stripe's latest event for {stripe_id} (Dashboard > Developers > Events > Resend): "
        "the webhook settles the credit from it"
    )


def check_reversals() -> list[Discrepancy]:
    """The ledger against the reversals, and the reversals against dj-stripe's stored objects."""
    return _check_ledger() + _check_claims() + _check_stored_copies()


def _check_ledger() -> list[Discrepancy]:
    held = dict(
        Reversal.objects.values_list("purchase").annotate(h=Sum(F("debited_minor") - F("returned_minor"))).order_by()
    )
    posted = dict(
        LedgerEntry.objects.filter(kind__in=REVERSAL_ENTRY_KINDS, purchase__isnull=False)
        .values_list("purchase")
        .annotate(total=Sum("balance_delta_minor"))
        .order_by()
    )
    found = []
    for purchase_id in sorted(set(held) | set(posted), key=str):
        keeps, moved = held.get(purchase_id, 0), -posted.get(purchase_id, 0)
        if keeps != moved:
            found.append(
                Discrepancy(
                    "reversal_ledger",
                    f"purchase {purchase_id}",
                    f"its refund and chargeback entries took {moved} credit, its reversals hold {keeps}",
                )
            )
    return found


def _check_claims() -> list[Discrepancy]:
    over = (
        Purchase.objects.annotate(claimed=Sum("reversals__claimed_minor"))
        .filter(claimed__gt=F("credit_minor"))
        .order_by("created_at")
    )
    return [
        Discrepancy(
            "reversal_over_claim",
            f"purchase {p.pk}",
            f"its refunds and disputes claim {p.claimed} credit of the {p.credit_minor} it added",
        )
        for p in over
    ]


def _ours(row: Reversal) -> tuple[str, int]:
    return (row.stripe_status, row.amount_minor)


def _differs(check: str, row: Reversal, theirs: tuple[Any, Any], where: str) -> Discrepancy:
    return Discrepancy(
        check,
        f"{row.kind} {row.stripe_id} (purchase {row.purchase_id})",
        f"we hold {_ours(row)[0]} {_ours(row)[1]}, {where} holds {theirs[0]} {theirs[1]}",
        [_resend(row.stripe_id)],
    )


def _check_stored_copies() -> list[Discrepancy]:
    rows = list(Reversal.objects.exclude(kind=ReversalKind.CHARGE_REFUNDS).order_by("id"))
    ids = [r.stripe_id for r in rows]
    stored: dict[str, tuple[Any, Any]] = {r.id: (r.status, r.amount) for r in StripeRefund.objects.filter(id__in=ids)}
    stored.update(
        {
            d.id: (d.stripe_data.get("status"), d.stripe_data.get("amount"))
            for d in StripeDispute.objects.filter(id__in=ids)
        }
    )
    return [
        _differs("reversal_differs_from_stored_stripe", row, stored[row.stripe_id], "dj-stripe's stored copy")
        for row in rows
        if row.stripe_id in stored and stored[row.stripe_id] != _ours(row)
    ]


def _retrieve(client: Any, row: Reversal) -> tuple[Any, Any]:
    if row.kind == ReversalKind.REFUND:
        obj = client.v1.refunds.retrieve(row.stripe_id).to_dict()
        return (obj.get("status"), obj.get("amount"))
    if row.kind == ReversalKind.DISPUTE:
        obj = client.v1.disputes.retrieve(row.stripe_id).to_dict()
        return (obj.get("status"), obj.get("amount"))
    charge = client.v1.charges.retrieve(row.stripe_id).to_dict()
    return (charge_refund_status(charge), charge.get("amount_refunded"))


def check_stripe_reversals(client: Any) -> list[Discrepancy]:
    """Each reversal against its object as Stripe's API returns it now (read-only calls)."""
    import stripe

    found = []
    for row in Reversal.objects.exclude(stripe_id__startswith=LEGACY_PREFIX).order_by("id"):
        try:
            theirs = _retrieve(client, row)
        except stripe.InvalidRequestError as error:
            if getattr(error, "http_status", None) != 404:
                raise
            found.append(
                Discrepancy(
                    "reversal_unknown_to_stripe",
                    f"{row.kind} {row.stripe_id} (purchase {row.purchase_id})",
                    f"we hold {row.stripe_status} {row.amount_minor}; Stripe has no such object",
                )
            )
            continue
        if theirs != _ours(row):
            found.append(_differs("reversal_differs_from_stripe", row, theirs, "Stripe"))
    return found

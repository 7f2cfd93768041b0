"""Existing refunds and chargebacks: explicit ledger kinds, and one Reversal row per source.

Before, every reversal was a `refund` entry, told apart by its idempotency key's prefix:
`stripe-refund:<event>` (a refund, or a failed one giving credit back), `stripe-dispute:<id>`
(a chargeback) and `stripe-dispute-won:<id>` (a chargeback won). This re-labels them
refund / refund_reversal / chargeback / chargeback_reversal (only the kind changes: deltas,
balances and keys stay as they were), and records what each source took as a Reversal row,
so that the next event about the same purchase settles from there instead of taking the
credit a second time. Refunds are recorded as the charge's refunded total (their Refund
ids were not kept); a later charge.refunded for that charge, or its Refund objects, take over.
"""

from __future__ import annotations

from django.db import migrations
from django.db.models import Q


def _share(purchase, taken):
    return purchase.credit_minor * min(taken, purchase.amount_minor) // purchase.amount_minor


def _row(Reversal, purchase, *, stripe_id, kind, amount, status, takes, rank, created, claimed, held):
    debited = held if held > 0 else 0
    claimed = max(claimed, debited)
    Reversal.objects.get_or_create(
        stripe_id=stripe_id,
        defaults={
            "purchase": purchase,
            "kind": kind,
            "amount_minor": amount,
            "stripe_status": status,
            "stripe_charge_id": stripe_id if kind == "charge_refunds" and not stripe_id.startswith("legacy-") else "",
            "takes_funds": takes,
            "state_rank": rank,
            "state_created": created,
            "state_event_id": "migration",
            "claimed_minor": claimed,
            "debited_minor": debited,
            "returned_minor": 0,
            "shortfall_minor": claimed - debited,
        },
    )


def forwards(apps, schema_editor):
    LedgerEntry = apps.get_model("ledger", "LedgerEntry")
    Purchase = apps.get_model("purchases", "Purchase")
    Reversal = apps.get_model("purchases", "Reversal")
    old = LedgerEntry.objects.filter(kind="refund")
    refunds = old.filter(idempotency_key__startswith="stripe-refund:")
    refunds.filter(details__credit_reversed_minor__lt=0).update(kind="refund_reversal")
    old.filter(idempotency_key__startswith="stripe-dispute-won:").update(kind="chargeback_reversal")
    old.filter(idempotency_key__startswith="stripe-dispute:").update(kind="chargeback")

    touched = LedgerEntry.objects.filter(
        Q(idempotency_key__startswith="stripe-refund:") | Q(idempotency_key__startswith="stripe-dispute")
    ).values_list("purchase_id", flat=True)
    for purchase in Purchase.objects.filter(pk__in=set(touched)).order_by("created_at"):
        entries = list(LedgerEntry.objects.filter(purchase=purchase).exclude(kind="purchase").order_by("id"))
        refund_entries = [e for e in entries if (e.idempotency_key or "").startswith("stripe-refund:")]
        dispute_entries = [e for e in entries if (e.idempotency_key or "").startswith("stripe-dispute")]
        refund_target = _share(purchase, purchase.refunded_minor)
        if refund_entries:
            charge_id = next((e.details.get("charge") for e in reversed(refund_entries) if e.details.get("charge")), "")
            _row(
                Reversal,
                purchase,
                stripe_id=charge_id or f"legacy-refunds:{purchase.pk}",
                kind="charge_refunds",
                amount=purchase.refunded_minor,
                status="refunded" if purchase.refunded_minor >= purchase.amount_minor else "partially_refunded",
                takes=purchase.refunded_minor > 0,
                rank=0,
                created=purchase.refund_event_created,
                claimed=refund_target,
                held=-sum(e.balance_delta_minor for e in refund_entries),
            )
        if dispute_entries:
            dispute_id = next((e.details.get("dispute") for e in dispute_entries if e.details.get("dispute")), "")
            disputed = purchase.disputed_minor
            amount = disputed or max((int(e.details.get("disputed_minor") or 0) for e in dispute_entries), default=0)
            _row(
                Reversal,
                purchase,
                stripe_id=dispute_id or f"legacy-dispute:{purchase.pk}",
                kind="dispute",
                amount=amount,
                status="needs_response" if disputed else "won",
                takes=disputed > 0,
                rank=2 if disputed else 4,
                created=0,
                claimed=_share(purchase, purchase.refunded_minor + disputed) - refund_target if disputed else 0,
                held=-sum(e.balance_delta_minor for e in dispute_entries),
            )


def backwards(apps, schema_editor):
    LedgerEntry = apps.get_model("ledger", "LedgerEntry")
    LedgerEntry.objects.filter(
        kind__in=["refund_reversal", "chargeback", "chargeback_reversal"],
        idempotency_key__regex=r"^stripe-(refund|dispute|dispute-won):",
    ).update(kind="refund")
    apps.get_model("purchases", "Reversal").objects.filter(state_event_id="migration").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0002_more_kinds"),
        ("purchases", "0004_reversals_by_stripe_id"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]

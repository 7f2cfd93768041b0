"""Reconciling app-store purchases: each StorePurchase against the ledger, like Stripe's.

- a credited purchase has exactly one credit entry, on its account, for what it says it added
  (credit minor units, or the tool pack's uses);
- a voided purchase that was credited has its reversal entry, and that entry took what the
  row records (the rest is its shortfall: taken + shortfall = what was credited);
- a purchase voided before it was verified has no entries at all;
- the entries naming a purchase add up to what it holds now (an App Store purchase may be
  refunded and restored more than once: all its refunds and restorations count);
- no store credit or store refund entry names a purchase we do not hold.
"""

from __future__ import annotations

from django.db.models import Subquery, Sum, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from backoffice.findings import Discrepancy, reverse_credit_command
from ledger.models import EntryKind, LedgerEntry
from stores.models import Grants, PurchaseState, Store, StorePurchase


def _subject(row: StorePurchase) -> str:
    return f"{row.get_store_display()} purchase {row.pk} (order {row.order_id or '?'})"


def _credit_problem(row: StorePurchase) -> str | None:
    entry = row.credit_entry
    if entry is None:
        return "marked credited but has no credit entry"
    if entry.account_id != row.account_id:
        return f"its credit entry #{entry.pk} is on another account"
    if row.product is not None and row.product.grants == Grants.TOOL:
        added = int(entry.details.get("purchased_delta", 0))
        if added != row.uses_credited:
            return f"credited {added} tool uses, the row says {row.uses_credited}"
    elif entry.balance_delta_minor != row.credit_minor:
        return f"credited {entry.balance_delta_minor} minor units, the row says {row.credit_minor}"
    return None


def _reversal_problem(row: StorePurchase) -> str | None:
    if row.credit_entry_id is None:
        return "voided before it was verified, yet has a reversal entry" if row.reversal_entry_id else None
    entry = row.reversal_entry
    if entry is None:
        return "voided after its credit, but nothing was taken back (no reversal entry)"
    if row.product is not None and row.product.grants == Grants.TOOL:
        taken = -int(entry.details.get("purchased_delta", 0))
        if taken != row.reversed_uses or row.reversed_uses + row.shortfall_uses != row.uses_credited:
            return f"took back {taken} tool uses; the row records {row.reversed_uses} + {row.shortfall_uses} short"
    elif -entry.balance_delta_minor != row.reversed_minor or row.reversed_minor + row.shortfall_minor != (
        row.credit_minor
    ):
        return (
            f"took back {-entry.balance_delta_minor} minor units; the row records {row.reversed_minor} "
            f"+ {row.shortfall_minor} short of {row.credit_minor}"
        )
    return None


def _net_problem(row: StorePurchase, nets: dict[str, int]) -> str | None:
    held = (row.credit_minor if row.credit_entry_id else 0) - (
        row.reversed_minor if row.state == PurchaseState.VOIDED else 0
    )
    net = nets.get(str(row.pk), 0)
    return f"its ledger entries add up to {net} minor units, the row holds {held}" if net != held else None


def check_store_purchases() -> list[Discrepancy]:
    found = []
    nets = {
        entry["store_purchase"]: entry["net"]
        for entry in LedgerEntry.objects.annotate(store_purchase=KT("details__store_purchase_id"))
        .filter(store_purchase__isnull=False)
        .values("store_purchase")
        .annotate(net=Sum("balance_delta_minor"))
    }
    rows = StorePurchase.objects.select_related("product", "credit_entry", "reversal_entry", "account").order_by(
        "created_at"
    )
    for row in rows.iterator(chunk_size=1000):
        if row.state == PurchaseState.CREDITED:
            problem = _credit_problem(row)
        else:
            problem = _reversal_problem(row)
        problem = problem or _net_problem(row, nets)
        if problem:
            found.append(Discrepancy("store_purchase", _subject(row), problem))

    referenced = set(StorePurchase.objects.exclude(credit_entry=None).values_list("credit_entry_id", flat=True))
    referenced |= set(StorePurchase.objects.exclude(reversal_entry=None).values_list("reversal_entry_id", flat=True))
    app_store_rows = StorePurchase.objects.filter(store=Store.APP_STORE).annotate(text_id=Cast("id", TextField()))
    store_entries = (
        LedgerEntry.objects.annotate(store=KT("details__store"), store_purchase=KT("details__store_purchase_id"))
        .filter(
            store__isnull=False,
            kind__in=[EntryKind.PURCHASE, EntryKind.REFUND, EntryKind.REFUND_REVERSAL, EntryKind.TOOL_GRANT],
        )
        .exclude(pk__in=referenced)
        # An App Store purchase's earlier refunds and restorations (the net check above sums them).
        .exclude(
            kind__in=[EntryKind.REFUND, EntryKind.REFUND_REVERSAL],
            store_purchase__in=Subquery(app_store_rows.values("text_id")),
        )
        .select_related("account")
        .order_by("id")
    )
    for entry in store_entries:
        fixes = []
        if entry.kind == EntryKind.PURCHASE:
            fixes.append(
                reverse_credit_command(
                    entry,
                    reason=f"Reconcile: reverse store credit #{entry.pk} that no store purchase holds",
                    check_first="after checking the store purchase really does not exist",
                )
            )
        found.append(
            Discrepancy(
                "store_entry_without_purchase",
                f"ledger entry #{entry.pk} on {entry.account}",
                f"a store {entry.kind} of {entry.balance_delta_minor} minor units that no store purchase names",
                fixes,
            )
        )
    return found

"""The reconcile check of tool allowances: each allowance's free uses, purchased uses and use
count must be what its ledger entries recorded (grants minus free uses, packs minus the uses
they paid for and their refunds, and the number of tool charges)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from ledger.models import EntryKind, LedgerEntry
from tools.models import ToolAllowance

TOOL_KINDS = (EntryKind.TOOL_GRANT, EntryKind.TOOL_CHARGE)


@dataclass(frozen=True)
class AllowanceDiscrepancy:
    """The fields of backoffice.findings.Discrepancy (tools does not import the back office)."""

    check: str
    subject: str
    detail: str
    fixes: list[str] = field(default_factory=list)


def _per_allowance(queryset, aggregate):  # type: ignore[no-untyped-def]
    return Subquery(
        queryset.values("account").annotate(v=aggregate).values("v"),
        output_field=IntegerField(),
    )


def check_tool_allowances() -> list[AllowanceDiscrepancy]:
    entries = (
        LedgerEntry.objects.filter(account=OuterRef("account"), kind__in=TOOL_KINDS)
        .annotate(entry_product=KT("details__product"))
        .filter(entry_product=OuterRef("product__product_type"))
    )
    allowances = (
        ToolAllowance.objects.select_related("account", "product")
        .annotate(
            ledger_free=Coalesce(
                _per_allowance(entries, Sum(Cast(KT("details__free_delta"), IntegerField()))), Value(0)
            ),
            ledger_purchased=Coalesce(
                _per_allowance(entries, Sum(Cast(KT("details__purchased_delta"), IntegerField()))), Value(0)
            ),
            ledger_uses=Coalesce(_per_allowance(entries, Count("id", filter=Q(kind=EntryKind.TOOL_CHARGE))), Value(0)),
        )
        .order_by("account_id", "product_id")
    )
    found = []
    for allowance in allowances.iterator(chunk_size=1000):
        problems = []
        if allowance.free_remaining != allowance.ledger_free:
            problems.append(
                f"free uses {allowance.free_remaining} but its ledger records {allowance.ledger_free} "
                "(grants minus free uses)"
            )
        if allowance.purchased_remaining != allowance.ledger_purchased:
            problems.append(
                f"purchased uses {allowance.purchased_remaining} but its ledger records {allowance.ledger_purchased} "
                "(packs minus the uses they paid for)"
            )
        if allowance.total_uses != allowance.ledger_uses:
            problems.append(
                f"total uses {allowance.total_uses} but its ledger has {allowance.ledger_uses} tool charges"
            )
        if problems:
            found.append(
                AllowanceDiscrepancy(
                    "tool_allowance",
                    f"{allowance.product.product_type} allowance of account {allowance.account_id} "
                    f"({allowance.account})",
                    "; ".join(problems),
                    ["the allowance was changed outside tools.services: correct it with a staff grant, or in SQL"],
                )
            )
    return found

"""Reconciliation: does every account agree with its ledger, every purchase with its credit
(backoffice.reconcile_purchases) and with its refunds and disputes
(backoffice.reconcile_reversals), and (optionally) all of it with Stripe
(backoffice.reconcile_stripe)? Read-only: it reports, and suggests the commands that would
fix each finding; it never moves money itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Account
from backoffice.findings import Discrepancy, grant_command
from backoffice.reconcile_purchases import check_purchases
from backoffice.reconcile_reversals import check_reversals, check_stripe_reversals
from backoffice.reconcile_stores import check_store_purchases
from backoffice.reconcile_stripe import check_stripe
from ledger.invariants import daily_free_uses_findings
from ledger.models import EntryKind, LedgerEntry
from tools.reconcile import check_tool_allowances


def check_accounts() -> list[Discrepancy]:
    """Balance, free uses and total uses of every account against the sums of its ledger."""
    charge_entries = (
        LedgerEntry.objects.filter(account=OuterRef("pk"), kind=EntryKind.CHARGE)
        .values("account")
        .annotate(n=Count("id"))
        .values("n")
    )
    accounts = (
        Account.objects.annotate(
            ledger_balance=Coalesce(Sum("ledger_entries__balance_delta_minor"), Value(0)),
            ledger_free_uses=Coalesce(Sum("ledger_entries__free_uses_delta"), Value(0)),
            ledger_uses=Coalesce(Subquery(charge_entries, output_field=IntegerField()), Value(0)),
        )
        .exclude(
            balance_minor=F("ledger_balance"),
            free_uses_remaining=F("ledger_free_uses"),
            total_uses=F("ledger_uses"),
        )
        .order_by("created_at")
    )
    found = []
    for account in accounts:
        problems = []
        if account.balance_minor != account.ledger_balance:
            problems.append(f"balance {account.balance_minor} but its ledger sums to {account.ledger_balance}")
        if account.free_uses_remaining != account.ledger_free_uses:
            problems.append(
                f"free uses {account.free_uses_remaining} but its ledger sums to {account.ledger_free_uses}"
            )
        if account.total_uses != account.ledger_uses:
            problems.append(f"total uses {account.total_uses} but its ledger has {account.ledger_uses} charges")
        fixes = []
        if account.balance_minor != account.ledger_balance or account.free_uses_remaining != account.ledger_free_uses:
            fixes.append(
                f"manage.py record_ledger_drift --account-id {account.pk} --reason "
                f"{shlex.quote('Reconcile: account changed outside the ledger')}"
                "   # records the difference; the account keeps what it has"
            )
            drift = account.ledger_balance - account.balance_minor
            if drift:
                fixes.append(
                    grant_command(
                        account,
                        amount_minor=drift,
                        reason="Reconcile: restore the balance the ledger recorded",
                        key=f"reconcile:restore:{account.pk}:{account.ledger_balance}",
                        adjustment=True,
                    )
                    + "   # then, only if the ledger was right"
                )
        found.append(Discrepancy("account", f"account {account.pk} ({account})", "; ".join(problems), fixes))
    return found


def reconcile(*, stripe_client: Any | None = None) -> list[Discrepancy]:
    found = check_accounts() + check_purchases() + check_reversals() + check_store_purchases()
    found += [Discrepancy(d.check, d.subject, d.detail, d.fixes) for d in check_tool_allowances()]
    found += [Discrepancy("daily_free_uses", *finding) for finding in daily_free_uses_findings()]
    if stripe_client is not None:
        found += check_stripe(stripe_client)
        found += check_stripe_reversals(stripe_client)
    return found


def format_report(found: Iterable[Discrepancy]) -> list[str]:
    lines = []
    for n, item in enumerate(found, 1):
        lines.append(f"{n}. [{item.check}] {item.subject}: {item.detail}")
        lines.extend(f"     fix: {fix}" for fix in item.fixes)
    return lines

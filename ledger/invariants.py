"""Ledger invariants that `manage.py reconcile` proves beside the balance and free uses."""

from __future__ import annotations

import shlex

from django.db.models import F, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Account


def daily_free_uses_findings() -> list[tuple[str, str, list[str]]]:
    """(subject, detail, fixes) for every account whose daily free uses differ from its ledger's sum."""
    accounts = (
        Account.objects.annotate(ledger_daily=Coalesce(Sum("ledger_entries__daily_free_uses_delta"), Value(0)))
        .exclude(daily_free_uses_remaining=F("ledger_daily"))
        .order_by("created_at")
    )
    return [
        (
            f"account {account.pk} ({account})",
            f"daily free uses {account.daily_free_uses_remaining} but its ledger sums to {account.ledger_daily}",
            [
                f"manage.py record_ledger_drift --account-id {account.pk} --reason "
                f"{shlex.quote('Reconcile: daily free uses changed outside the ledger')}"
            ],
        )
        for account in accounts
    ]

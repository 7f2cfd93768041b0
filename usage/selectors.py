"""Reads: an account's usage records (with their totals and charge), its ledger for the agent's history."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db.models import CharField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Concat

from accounts.identity import Identity
from accounts.selectors import account_for_identity
from charges.models import Charge
from ledger.models import EntryKind, LedgerEntry
from usage.models import UsageEntry, UsageRecord, UsageTotals


def attach_totals(records: Iterable[UsageRecord]) -> None:
    """Fill the totals of a page of records with two queries, not two per record."""
    records = list(records)
    totals = UsageEntry.objects.filter(record_id__in=[record.pk for record in records]).totals()
    for record in records:
        record.__dict__["totals"] = totals.get(record.pk) or UsageTotals()


def charge_lookup() -> QuerySet[Charge]:
    """The interaction's charge (key litellm:{interaction_id}, same account), for a Subquery on
    UsageRecord. Found when read: usage and charge arrive in either order, so nothing has to be
    linked when either is written. One lookup on the unique (account, idempotency_key) index."""
    key = Concat(Value("litellm:"), OuterRef("interaction_id"), output_field=CharField())
    return Charge.objects.filter(account=OuterRef("account_id"), idempotency_key=key)


def linked_charge_id() -> Subquery:
    return Subquery(charge_lookup().values("id")[:1])


def usage_with_charge() -> QuerySet[UsageRecord]:
    return UsageRecord.objects.annotate(linked_charge_id=linked_charge_id())


def account_usage(*, account_id: uuid.UUID | str) -> QuerySet[UsageRecord]:
    return usage_with_charge().filter(account_id=account_id).order_by("-id")


def identity_transactions(*, identity: Identity, limit: int, offset: int) -> tuple[list[LedgerEntry], int]:
    """A page of the identity's ledger, newest first, and the total count (no account: none).

    A read never creates an account. Status changes (zero-delta audit entries) and the daily
    free-use top-ups (one a day per account: noise in a user's history) are not transactions
    and are left out.
    """
    account = account_for_identity(identity=identity)
    if account is None:
        return [], 0
    entries = (
        LedgerEntry.objects.filter(account=account)
        .exclude(kind__in=[EntryKind.STATUS_CHANGE, EntryKind.DAILY_FREE_USES_GRANTED])
        .select_related("charge", "purchase")
        .order_by("-id")
    )
    return list(entries[offset : offset + limit]), entries.count()

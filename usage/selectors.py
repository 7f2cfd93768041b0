"""Reads: an account's usage records (with their totals and charge), its ledger for the agent's history."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import CharField, Count, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Concat

from accounts.identity import Identity
from accounts.selectors import account_for_identity
from charges.models import Charge
from ledger.models import EntryKind, LedgerEntry
from usage.models import COUNT_FIELDS, MAX_MODELS, PostKind, UsageEntry, UsageRecord

COST = "actual_cost_cents"
TOTAL_FIELDS = (*COUNT_FIELDS, COST)


@dataclass
class UsageTotals:
    """An interaction's totals, from all its posts."""

    total_llm_calls: int = 0
    total_prompt_tokens: int = 0
    total_completion_tokens: int = 0
    actual_cost_cents: Decimal = Decimal(0)
    duration_ms: int = 0
    error_count: int = 0
    fallback_count: int = 0
    models_used: list[str] = field(default_factory=list)
    updated_at: dt.datetime | None = None


def _bucket_aggregates() -> dict[str, Any]:
    """Per interaction, each kind of post folded its own way (one GROUP BY over its posts)."""
    per_call, aggregate, ambiguous = (Q(kind=kind) for kind in PostKind.values)
    aggregates: dict[str, Any] = {"per_call_posts": Count("id", filter=per_call), "updated_at": Max("created_at")}
    for name in TOTAL_FIELDS:
        aggregates[f"per_call_sum_{name}"] = Sum(name, filter=per_call)
        aggregates[f"aggregate_max_{name}"] = Max(name, filter=aggregate)
        aggregates[f"ambiguous_sum_{name}"] = Sum(name, filter=ambiguous)
        aggregates[f"ambiguous_max_{name}"] = Max(name, filter=ambiguous)
    return aggregates


def totals_from(row: dict[str, Any]) -> UsageTotals:
    """The rule that never counts a call twice, applied to one interaction's folded posts.

    Per-call posts each describe a distinct call, so they are summed; an aggregated post
    describes the calls so far (including calls whose per-call posts may or may not have
    arrived), so only the largest value of each field across aggregates is kept. A one-call
    post with an integer cost is either: it counts as an aggregate once the interaction has a
    per-call post with a fractional cost (the proxy sends those whenever a provider reports a
    cost), else as per-call posts (an interaction whose calls reported no cost). Each total is
    then max(sum, largest), field by field: the same whatever order the posts arrived in.
    """
    totals = UsageTotals(updated_at=row.get("updated_at"))
    has_per_call = bool(row.get("per_call_posts"))
    for name in TOTAL_FIELDS:
        zero = Decimal(0) if name == COST else 0
        aggregate_max = row.get(f"aggregate_max_{name}") or zero
        if has_per_call:
            summed = row.get(f"per_call_sum_{name}") or zero
            largest = max(aggregate_max, row.get(f"ambiguous_max_{name}") or zero)
        else:
            summed, largest = row.get(f"ambiguous_sum_{name}") or zero, aggregate_max
        total = max(summed, largest)
        setattr(totals, name, total if name == COST else int(total))
    return totals


def totals_of(entries: QuerySet[UsageEntry]) -> dict[int, UsageTotals]:
    """The totals of every interaction that has posts among `entries`, by record id.

    models_used is the union of the posts' models, first seen first (at most MAX_MODELS).
    """
    rows = entries.order_by().values("record_id").annotate(**_bucket_aggregates())
    totals = {row["record_id"]: totals_from(row) for row in rows}
    model_lists = (
        entries.exclude(models_used=[])
        .order_by()
        .values("record_id", "models_used")
        .annotate(first=Min("id"))
        .order_by("first")
    )
    for row in model_lists:
        models = totals[row["record_id"]].models_used
        for model in row["models_used"] or ():
            if model not in models and len(models) < MAX_MODELS:
                models.append(model)
    return totals


def record_totals(*, record_id: int) -> UsageTotals:
    return totals_of(UsageEntry.objects.filter(record_id=record_id)).get(record_id) or UsageTotals()


def attach_totals(records: Iterable[UsageRecord]) -> None:
    """Fill the totals of a page of records with two queries, not two per record."""
    records = list(records)
    totals = totals_of(UsageEntry.objects.filter(record_id__in=[record.pk for record in records]))
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

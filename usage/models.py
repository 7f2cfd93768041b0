"""LLM usage: one record per (account, interaction), and every post the proxy sent for it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Count, Max, Min, Q, Sum
from django.utils.functional import cached_property

# Provider cost in cents with sub-cent precision: 10 decimal places, and room for the sum of
# many posts of up to 10^12 cents each (see usage.serializers).
COST_MAX_DIGITS = 30
COST_DECIMAL_PLACES = 10
# An interaction names at most this many models (a post's list, and their union).
MAX_MODELS = 100
COUNT_FIELDS = (
    "total_llm_calls",
    "total_prompt_tokens",
    "total_completion_tokens",
    "duration_ms",
    "error_count",
    "fallback_count",
)


class PostKind(models.TextChoices):
    """How a post counts towards its interaction's totals (see totals_from)."""

    PER_CALL = "per_call", "One LLM call"
    AGGREGATE = "aggregate", "The interaction's totals so far"
    # One call with an integer cost: a per-call post without a reported cost, or the totals
    # of a one-call interaction; which one is only known from the interaction's other posts.
    ONE_CALL_INTEGER = "one_call_integer", "One call or the totals of one call"


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


class UsageEntryQuerySet(models.QuerySet["UsageEntry"]):
    def totals(self) -> dict[int, UsageTotals]:
        """The totals of every interaction that has posts among these, by record id.

        models_used is the union of the posts' models, first seen first (at most MAX_MODELS).
        """
        return _totals_of(self)


def _totals_of(entries: models.QuerySet[UsageEntry]) -> dict[int, UsageTotals]:
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
        names = totals[row["record_id"]].models_used
        for model in row["models_used"] or ():
            if model not in names and len(names) < MAX_MODELS:
                names.append(model)
    return totals


class UsageRecord(models.Model):
    """An interaction: the id the proxy's posts are logged under (`usage_log_id`).

    Its totals are not stored here but computed from its posts (UsageEntry) when read, so a
    post is one INSERT and concurrent posts for one interaction never wait for each other.
    `totals` is computed on first access; the list endpoint, the admin and the margin report
    fill it for a whole page at once (usage.selectors.attach_totals). Not money: the charge
    for the interaction is the Charge with idempotency key `litellm:{interaction_id}` (looked
    up, since usage and charge arrive in either order).
    """

    # A monotonically increasing id: a stable newest-first order for cursor pagination.
    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="usage_records")
    interaction_id = models.CharField(max_length=255)
    # The interaction's first post (the day the margin report counts it under).
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One record per interaction: concurrent first posts insert once (ON CONFLICT DO NOTHING).
            models.UniqueConstraint(fields=["account", "interaction_id"], name="usage_unique_account_interaction"),
        ]
        indexes = [models.Index(fields=["account", "-id"], name="usage_account_newest")]

    def __str__(self) -> str:
        return f"usage {self.interaction_id} ({self.total_llm_calls} calls, {self.actual_cost_cents} cents)"

    @property
    def charge_idempotency_key(self) -> str:
        return f"litellm:{self.interaction_id}"

    @cached_property
    def totals(self) -> UsageTotals:
        return UsageEntry.objects.filter(record_id=self.pk).totals().get(self.pk) or UsageTotals()

    @property
    def total_llm_calls(self) -> int:
        return self.totals.total_llm_calls

    @property
    def total_prompt_tokens(self) -> int:
        return self.totals.total_prompt_tokens

    @property
    def total_completion_tokens(self) -> int:
        return self.totals.total_completion_tokens

    @property
    def actual_cost_cents(self) -> Decimal:
        return self.totals.actual_cost_cents

    @property
    def duration_ms(self) -> int:
        return self.totals.duration_ms

    @property
    def error_count(self) -> int:
        return self.totals.error_count

    @property
    def fallback_count(self) -> int:
        return self.totals.fallback_count

    @property
    def models_used(self) -> list[str]:
        return self.totals.models_used

    @property
    def updated_at(self) -> dt.datetime:
        return self.totals.updated_at or self.created_at


class UsageEntry(models.Model):
    """One usage post as the proxy sent it: appended, never updated."""

    id = models.BigAutoField(primary_key=True)
    record = models.ForeignKey(UsageRecord, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=16, choices=PostKind.choices)
    total_llm_calls = models.BigIntegerField(default=0)
    total_prompt_tokens = models.BigIntegerField(default=0)
    total_completion_tokens = models.BigIntegerField(default=0)
    models_used = models.JSONField(default=list, blank=True)
    actual_cost_cents = models.DecimalField(
        max_digits=COST_MAX_DIGITS, decimal_places=COST_DECIMAL_PLACES, default=0, help_text="Provider cost in cents."
    )
    duration_ms = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    fallback_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = UsageEntryQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=PostKind.values), name="usage_entry_kind_valid"),
            models.CheckConstraint(condition=models.Q(actual_cost_cents__gte=0), name="usage_entry_cost_gte_0"),
            *(
                models.CheckConstraint(condition=models.Q(**{f"{name}__gte": 0}), name=f"usage_entry_{name}_gte_0")
                for name in COUNT_FIELDS
            ),
        ]

    def __str__(self) -> str:
        return f"usage post {self.pk} ({self.kind}, {self.total_llm_calls} calls)"

"""Margin analytics: provider cost of LLM usage against the revenue of the uses charged.

Revenue per use is what a user pays for one use of a pack: BILLING_PACK_PRICE_MINOR ÷
BILLING_PACK_USES (500 ÷ 20 = 25 cents by default). An interaction's revenue is its charge's
debit from the paid balance in uses (debited_minor ÷ BILLING_USE_PRICE_MINOR) times that price:
a use paid by a free use earns nothing, an interaction with no charge earns nothing. Provider
cost is the usage record's actual_cost_cents. Both are in minor units of BILLING_CURRENCY
(the proxy reports cents of USD). Days are the usage record's first post (UTC).

Per model: a multi-model interaction's cost, revenue, calls and tokens are split in equal
shares among its models_used, so the per-model columns add up to the totals; its interaction
is counted once under each of its models. An interaction naming no model is "(unknown)".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Subquery
from django.db.models.functions import TruncDate

from backoffice.reports import day_bounds
from usage.models import UsageEntry, UsageRecord, UsageTotals
from usage.selectors import charge_lookup

UNKNOWN_MODEL = "(unknown)"
ADDITIVE = ("calls", "prompt_tokens", "completion_tokens", "cost_cents", "revenue_minor")


def revenue_per_use_minor() -> Decimal:
    return Decimal(settings.BILLING_PACK_PRICE_MINOR) / Decimal(settings.BILLING_PACK_USES)


@dataclass
class Margin:
    """One day's, one model's or a period's margin. Money in minor units (cents), exact."""

    key: str
    interactions: int = 0
    calls: Decimal = Decimal(0)
    prompt_tokens: Decimal = Decimal(0)
    completion_tokens: Decimal = Decimal(0)
    cost_cents: Decimal = Decimal(0)
    paid_uses: int = 0
    free_uses: int = 0
    uncharged: int = 0
    revenue_minor: Decimal = Decimal(0)

    @property
    def margin_minor(self) -> Decimal:
        return self.revenue_minor - self.cost_cents

    @property
    def margin_percent(self) -> float | None:
        return round(float(100 * self.margin_minor / self.revenue_minor), 1) if self.revenue_minor else None

    @property
    def cost_per_interaction_cents(self) -> Decimal:
        return self.cost_cents / self.interactions if self.interactions else Decimal(0)

    def add(self, other: Margin, share: Decimal = Decimal(1)) -> None:
        self.interactions += other.interactions
        self.paid_uses += other.paid_uses
        self.free_uses += other.free_uses
        self.uncharged += other.uncharged
        for name in ADDITIVE:
            setattr(self, name, getattr(self, name) + getattr(other, name) * share)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: counts as numbers, money rounded to 4 decimals of a minor unit."""

        def number(value: Decimal, places: int = 4) -> float | int:
            rounded = round(value, places)
            return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)

        return {
            "key": self.key,
            "interactions": self.interactions,
            "calls": number(self.calls, 2),
            "prompt_tokens": number(self.prompt_tokens, 2),
            "completion_tokens": number(self.completion_tokens, 2),
            "paid_uses": self.paid_uses,
            "free_uses": self.free_uses,
            "uncharged": self.uncharged,
            "cost_cents": number(self.cost_cents),
            "revenue_minor": number(self.revenue_minor),
            "margin_minor": number(self.margin_minor),
            "margin_percent": self.margin_percent,
            "cost_per_interaction_cents": number(self.cost_per_interaction_cents),
        }


FIELDS = list(Margin(key="").as_dict())


@dataclass(frozen=True)
class MarginReport:
    days: list[Margin]
    models: list[Margin]
    total: Margin
    revenue_per_use_minor: Decimal


def _groups(lower: dt.datetime, upper: dt.datetime) -> list[dict[str, Any]]:
    """Usage in the period grouped by day, models and the charge's outcome (few distinct values).

    Each interaction's totals are computed from its posts (UsageEntryQuerySet.totals) in one
    grouped query over the period, then summed here per group.
    """
    charge = charge_lookup()
    records = (
        UsageRecord.objects.filter(created_at__gte=lower, created_at__lt=upper)
        .annotate(
            day=TruncDate("created_at"),
            debited=Subquery(charge.values("debited_minor")[:1]),
            free=Subquery(charge.values("paid_with_free_use")[:1]),
        )
        .values_list("id", "day", "debited", "free")
    )
    totals = UsageEntry.objects.filter(record__created_at__gte=lower, record__created_at__lt=upper).totals()
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record_id, day, debited, free in records.iterator(chunk_size=2000):
        record = totals.get(record_id) or UsageTotals()
        key = (day, tuple(record.models_used), debited, free)
        group = groups.setdefault(
            key,
            {"day": day, "models_used": list(record.models_used), "debited": debited, "free": free, "n": 0}
            | dict.fromkeys(("calls", "prompt", "completion"), 0)
            | {"cost": Decimal(0)},
        )
        group["n"] += 1
        group["calls"] += record.total_llm_calls
        group["prompt"] += record.total_prompt_tokens
        group["completion"] += record.total_completion_tokens
        group["cost"] += record.actual_cost_cents
    return list(groups.values())


def margin_report(*, start: dt.date, end: dt.date) -> MarginReport:
    """Per day (every day from start to end, both included), per model and in total."""
    if end < start:
        raise ValueError("end is before start")
    per_use = revenue_per_use_minor()
    per_credit_unit = per_use / settings.BILLING_USE_PRICE_MINOR
    days = {
        start + dt.timedelta(days=i): Margin(key=(start + dt.timedelta(days=i)).isoformat())
        for i in range((end - start).days + 1)
    }
    models: dict[str, Margin] = defaultdict(lambda: Margin(key=""))
    for row in _groups(*day_bounds(start, end)):
        n, debited = row["n"], row["debited"]
        group = Margin(
            key="",
            interactions=n,
            calls=Decimal(row["calls"] or 0),
            prompt_tokens=Decimal(row["prompt"] or 0),
            completion_tokens=Decimal(row["completion"] or 0),
            cost_cents=row["cost"] or Decimal(0),
            paid_uses=n if debited else 0,
            free_uses=n if row["free"] else 0,
            uncharged=n if debited is None else 0,
            revenue_minor=Decimal(debited or 0) * n * per_credit_unit,
        )
        days[row["day"]].add(group)
        names = list(row["models_used"] or []) or [UNKNOWN_MODEL]
        share = Decimal(1) / len(names)
        for name in names:
            models[name].key = name
            models[name].add(group, share)
    total = Margin(key="total")
    for day in days.values():
        total.add(day)
    by_cost = sorted(models.values(), key=lambda m: (-m.cost_cents, m.key))
    return MarginReport(
        days=[days[d] for d in sorted(days)], models=by_cost, total=total, revenue_per_use_minor=per_use
    )

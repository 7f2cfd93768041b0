"""Write LLM usage: merge the proxy's per-call and aggregated posts into one record per interaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from accounts.identity import Identity
from accounts.services import account_get_or_create
from usage.models import COUNT_FIELDS, UsageRecord

logger = logging.getLogger(__name__)

MAX_MODELS = 100
COST = "actual_cost_cents"


@dataclass(frozen=True)
class UsagePost:
    """One usage post's numbers, validated (counts ≥ 0, cost an exact Decimal)."""

    interaction_id: str
    total_llm_calls: int
    total_prompt_tokens: int
    total_completion_tokens: int
    models_used: tuple[str, ...]
    actual_cost_cents: Decimal
    duration_ms: int
    error_count: int
    fallback_count: int
    # True when actual_cost_cents came as a JSON integer (the proxy's aggregated posts send int cents).
    cost_is_integer: bool = False

    @property
    def kind(self) -> str:
        """PER_CALL, AGGREGATE or ONE_CALL_INTEGER (which of the two cannot be told from the body).

        The proxy's per-call posts carry total_llm_calls 1 and `round(cost, 4)`: a JSON float,
        or the integer 0 when the provider reported no cost. Its aggregated posts carry the
        totals so far with integer cents (`int(cost)`), so an aggregate of a one-call
        interaction (gone stale, continued) is also one call with an integer cost.
        """
        if self.total_llm_calls != 1:
            return AGGREGATE
        return ONE_CALL_INTEGER if self.cost_is_integer else PER_CALL


PER_CALL, AGGREGATE, ONE_CALL_INTEGER = "per_call", "aggregate", "one_call_integer"


def _empty() -> dict[str, Any]:
    return {"posts": 0, **dict.fromkeys(COUNT_FIELDS, 0), COST: "0"}


def _add(bucket: dict[str, Any], post: UsagePost) -> None:
    for name in COUNT_FIELDS:
        bucket[name] += getattr(post, name)
    bucket[COST] = str(Decimal(bucket[COST]) + post.actual_cost_cents)


def _keep_largest(bucket: dict[str, Any], post: UsagePost) -> None:
    for name in COUNT_FIELDS:
        bucket[name] = max(bucket[name], getattr(post, name))
    bucket[COST] = str(max(Decimal(bucket[COST]), post.actual_cost_cents))


def merge_post(record: UsageRecord, post: UsagePost) -> None:
    """Fold one post into the record's sources, then recompute the totals from them.

    The rule that never counts a call twice: per-call posts each describe a distinct call, so
    they are summed; an aggregated post describes the calls so far (including calls whose
    per-call posts may or may not have arrived), so only the largest value of each field
    across aggregates is kept. A one-call post with an integer cost is either: it is kept both
    summed and as its largest, and counts as an aggregate once the interaction has a per-call
    post with a fractional cost (the proxy sends those whenever a provider reports a cost),
    else as per-call posts (an interaction whose calls reported no cost). Each total is then
    max(per-call sum, largest aggregate), field by field: the same in any arrival order.
    models_used is the union (first seen first).
    """
    per_call = {**_empty(), **record.per_call}
    aggregate = {**_empty(), **record.aggregate}
    ambiguous = record.aggregate.get(ONE_CALL_INTEGER) or {"sum": _empty(), "largest": _empty()}
    kind = post.kind
    if kind == PER_CALL:
        per_call["posts"] += 1
        _add(per_call, post)
    elif kind == AGGREGATE:
        aggregate["posts"] += 1
        _keep_largest(aggregate, post)
    else:
        ambiguous["sum"]["posts"] += 1
        _add(ambiguous["sum"], post)
        _keep_largest(ambiguous["largest"], post)
    record.per_call, record.aggregate = per_call, {**aggregate, ONE_CALL_INTEGER: ambiguous}
    if per_call["posts"]:
        summed, largest = per_call, dict(aggregate)
        for name in (*COUNT_FIELDS, COST):
            largest[name] = max(Decimal(largest[name]), Decimal(ambiguous["largest"][name]))
    else:
        summed, largest = ambiguous["sum"], aggregate
    for name in COUNT_FIELDS:
        setattr(record, name, max(int(summed[name]), int(largest[name])))
    record.actual_cost_cents = max(Decimal(summed[COST]), Decimal(largest[COST]))
    models = list(record.models_used or [])
    for model in post.models_used:
        if model not in models and len(models) < MAX_MODELS:
            models.append(model)
    record.models_used = models


def usage_record(*, identity: Identity, actor: str, post: UsagePost) -> UsageRecord:
    """Record one usage post for the identity's interaction (the account is made on first sight).

    Concurrent posts for one interaction: the first post's INSERT of the empty record is ON
    CONFLICT DO NOTHING (the unique constraint lets one in), and every merge happens with the
    record's row locked, so no post's numbers are lost or applied twice.
    """
    account, _ = account_get_or_create(identity=identity, actor=actor)
    records = UsageRecord.objects.select_for_update()
    with transaction.atomic():
        record = records.filter(account=account, interaction_id=post.interaction_id).first()
        if record is None:
            UsageRecord.objects.bulk_create(
                [UsageRecord(account=account, interaction_id=post.interaction_id)], ignore_conflicts=True
            )
            record = records.get(account=account, interaction_id=post.interaction_id)
        merge_post(record, post)
        record.save()
    logger.info(
        "usage recorded",
        extra={
            "account_id": str(account.pk),
            "usage_log_id": record.pk,
            "kind": post.kind,
            "total_llm_calls": record.total_llm_calls,
        },
    )
    return record

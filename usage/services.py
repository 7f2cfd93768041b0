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
    def is_per_call(self) -> bool:
        """A report of one LLM call, as the proxy sends after every call; otherwise an aggregate.

        The proxy's per-call posts carry total_llm_calls 1 and `round(cost, 4)`: a JSON float, or
        the integer 0 when the provider reported no cost. Its aggregated posts carry the totals so
        far with integer cents (`int(cost)`). So a post of one call with a whole, non-zero number
        of cents is an aggregate (a one-call interaction gone stale), not a second call. A one-call
        aggregate of under a cent (int 0) cannot be told from a per-call post and is counted as one.
        """
        if self.total_llm_calls != 1:
            return False
        return not (self.cost_is_integer and self.actual_cost_cents > 0)


def _empty() -> dict[str, Any]:
    return {"posts": 0, **dict.fromkeys(COUNT_FIELDS, 0), COST: "0"}


def merge_post(record: UsageRecord, post: UsagePost) -> None:
    """Fold one post into the record's two sources, then recompute the totals.

    The rule that never counts a call twice: per-call posts each describe a distinct call, so
    they are summed; an aggregated post describes the calls so far (including calls whose
    per-call posts may or may not have arrived), so only the largest value of each field across
    aggregates is kept. Each total is then the larger of the two, field by field:
    total = max(sum of per-call posts, largest aggregate). Posts may arrive in any order, and
    the result is the same whatever the order. models_used is the union (first seen first).
    """
    per_call = {**_empty(), **record.per_call}
    aggregate = {**_empty(), **record.aggregate}
    if post.is_per_call:
        per_call["posts"] += 1
        for name in COUNT_FIELDS:
            per_call[name] += getattr(post, name)
        per_call[COST] = str(Decimal(per_call[COST]) + post.actual_cost_cents)
    else:
        aggregate["posts"] += 1
        for name in COUNT_FIELDS:
            aggregate[name] = max(aggregate[name], getattr(post, name))
        aggregate[COST] = str(max(Decimal(aggregate[COST]), post.actual_cost_cents))
    record.per_call, record.aggregate = per_call, aggregate
    for name in COUNT_FIELDS:
        setattr(record, name, max(per_call[name], aggregate[name]))
    record.actual_cost_cents = max(Decimal(per_call[COST]), Decimal(aggregate[COST]))
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
            "per_call": post.is_per_call,
            "total_llm_calls": record.total_llm_calls,
        },
    )
    return record

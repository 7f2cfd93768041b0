"""Write LLM usage: append each of the proxy's posts to its interaction's record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from accounts.identity import Identity
from accounts.models import Account
from accounts.services import account_get_or_create
from usage.models import COUNT_FIELDS, PostKind, UsageEntry, UsageRecord

logger = logging.getLogger(__name__)

MAX_MODELS = 100


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
    def kind(self) -> PostKind:
        """PER_CALL, AGGREGATE or ONE_CALL_INTEGER (which of the two cannot be told from the body).

        The proxy's per-call posts carry total_llm_calls 1 and `round(cost, 4)`: a JSON float,
        or the integer 0 when the provider reported no cost. Its aggregated posts carry the
        totals so far with integer cents (`int(cost)`), so an aggregate of a one-call
        interaction (gone stale, continued) is also one call with an integer cost.
        """
        if self.total_llm_calls != 1:
            return PostKind.AGGREGATE
        return PostKind.ONE_CALL_INTEGER if self.cost_is_integer else PostKind.PER_CALL


def _record_id(*, account: Account, interaction_id: str) -> int | None:
    ids = UsageRecord.objects.filter(account=account, interaction_id=interaction_id).values_list("pk", flat=True)
    return next(iter(ids[:1]), None)


def usage_record(*, identity: Identity, actor: str, post: UsagePost) -> int:
    """Record one usage post for the identity's interaction; its record's id (the account and
    the record are made on first sight).

    A post is one INSERT of its own row, no row lock: the interaction's totals are computed
    from its posts when read (usage.selectors.totals_from), so concurrent posts for one
    interaction neither wait for each other nor lose each other's numbers. Concurrent first
    posts insert the record once (ON CONFLICT DO NOTHING on the unique constraint waits for
    the winner's commit, and the next statement sees its row).
    """
    account, _ = account_get_or_create(identity=identity, actor=actor)
    entry = UsageEntry(
        kind=post.kind,
        models_used=list(dict.fromkeys(post.models_used))[:MAX_MODELS],
        actual_cost_cents=post.actual_cost_cents,
        **{name: getattr(post, name) for name in COUNT_FIELDS},
    )
    record_id = _record_id(account=account, interaction_id=post.interaction_id)
    if record_id is not None:
        entry.record_id = record_id
        entry.save(force_insert=True)
    else:
        with transaction.atomic():
            UsageRecord.objects.bulk_create(
                [UsageRecord(account=account, interaction_id=post.interaction_id)], ignore_conflicts=True
            )
            entry.record_id = _record_id(account=account, interaction_id=post.interaction_id)
            entry.save(force_insert=True)
    logger.info(
        "usage recorded",
        extra={"account_id": str(account.pk), "usage_log_id": entry.record_id, "kind": post.kind.value},
    )
    return entry.record_id

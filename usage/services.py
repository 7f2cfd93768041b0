"""Write LLM usage: append each of the proxy's posts to its interaction's record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections, router
from django.utils import timezone

from accounts.identity import Identity
from accounts.models import Account
from accounts.services import account_get_or_create
from usage.models import COUNT_FIELDS, MAX_MODELS, PostKind, UsageEntry, UsageRecord

logger = logging.getLogger(__name__)


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


# A post for a known interaction in one statement: its entry, with the record's id found by
# the same statement (no row of the record is locked or written). Nothing is inserted, and
# no row returned, when the interaction has no record yet.
INSERT_ENTRY_SQL = (
    "INSERT INTO usage_usageentry (record_id, kind, total_llm_calls, total_prompt_tokens, total_completion_tokens,"
    " duration_ms, error_count, fallback_count, actual_cost_cents, models_used, created_at)"
    " SELECT id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM usage_usagerecord"
    " WHERE account_id = %s AND interaction_id = %s"
    " RETURNING record_id"
)
ENTRY_COLUMNS = ("kind", *COUNT_FIELDS, "actual_cost_cents", "models_used", "created_at")


def _insert_entry(*, account: Account, post: UsagePost) -> int | None:
    """The entry's record id, or None when the interaction has no record (nothing written)."""
    connection = connections[router.db_for_write(UsageEntry)]
    values = {
        "kind": post.kind.value,
        **{name: getattr(post, name) for name in COUNT_FIELDS},
        "actual_cost_cents": post.actual_cost_cents,
        "models_used": list(dict.fromkeys(post.models_used))[:MAX_MODELS],
        "created_at": timezone.now(),
    }
    fields = {f.name: f for f in UsageEntry._meta.concrete_fields}
    params = [fields[name].get_db_prep_save(values[name], connection) for name in ENTRY_COLUMNS]
    account_id = UsageRecord._meta.get_field("account").get_db_prep_value(account.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(INSERT_ENTRY_SQL, [*params, account_id, post.interaction_id])
        row = cursor.fetchone()
    return row[0] if row else None


def usage_record(*, identity: Identity, actor: str, post: UsagePost) -> int:
    """Record one usage post for the identity's interaction; its record's id (the account and
    the record are made on first sight).

    A post is one INSERT of its own row, no row lock: the interaction's totals are computed
    from its posts when read (usage.models.totals_from), so concurrent posts for one
    interaction neither wait for each other nor lose each other's numbers. A first post
    inserts the record (ON CONFLICT DO NOTHING: of concurrent first posts one inserts, the
    others wait for its commit) and then its entry, which the next statement finds.
    """
    account, _ = account_get_or_create(identity=identity, actor=actor)
    record_id = _insert_entry(account=account, post=post)
    if record_id is None:
        UsageRecord.objects.bulk_create(
            [UsageRecord(account=account, interaction_id=post.interaction_id)], ignore_conflicts=True
        )
        record_id = _insert_entry(account=account, post=post)
        if record_id is None:  # records are never deleted: not reached
            raise RuntimeError(f"usage record for {post.interaction_id!r} vanished")
    logger.info(
        "usage recorded",
        extra={"account_id": str(account.pk), "usage_log_id": record_id, "kind": post.kind.value},
    )
    return record_id

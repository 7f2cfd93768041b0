"""usage 0002: records folded by the previous code become entries that fold to the same totals."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest

from tests.factories import AccountFactory
from usage.models import PostKind, UsageEntry, UsageRecord

pytestmark = pytest.mark.django_db

migration = importlib.import_module("usage.migrations.0002_usage_entries")


def bucket(posts: int, calls: int, prompt: int, cost: str) -> dict:
    """A source as the previous code kept it in its JSON columns."""
    return {"posts": posts, "total_llm_calls": calls, "total_prompt_tokens": prompt, "actual_cost_cents": cost}


def test_one_call_integer_posts_keep_both_their_sum_and_their_largest():
    # Three one-call posts with integer cents: (100 tokens, 3¢), (300, 1¢), (200, 2¢).
    old = {"sum": bucket(3, 3, 600, "6"), "largest": bucket(0, 1, 300, "3")}

    entries = migration._one_call_integer_entries(old)

    assert sum(e["total_prompt_tokens"] for e in entries) == 600
    assert sum(e["actual_cost_cents"] for e in entries) == Decimal(6)
    assert sum(e["total_llm_calls"] for e in entries) == 3
    assert max(e["total_prompt_tokens"] for e in entries) == 300
    assert max(e["actual_cost_cents"] for e in entries) == Decimal(3)
    assert len(entries) <= 3


def test_a_migrated_interaction_counts_later_posts_as_the_old_code_did():
    old = {"sum": bucket(3, 3, 600, "6"), "largest": bucket(0, 1, 300, "3")}
    record = UsageRecord.objects.create(account=AccountFactory(), interaction_id="int-old")
    UsageEntry.objects.bulk_create(
        UsageEntry(record=record, kind=PostKind.ONE_CALL_INTEGER, **values)
        for values in migration._one_call_integer_entries(old)
    )
    assert (record.total_llm_calls, record.total_prompt_tokens, record.actual_cost_cents) == (3, 600, 6)

    # A per-call post with a fractional cost: the integer posts were aggregates after all.
    UsageEntry.objects.create(
        record=record, kind=PostKind.PER_CALL, total_llm_calls=1, total_prompt_tokens=50, actual_cost_cents="0.5"
    )
    record = UsageRecord.objects.get(pk=record.pk)
    assert (record.total_llm_calls, record.total_prompt_tokens, record.actual_cost_cents) == (1, 300, 3)

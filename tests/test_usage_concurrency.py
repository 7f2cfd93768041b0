"""Usage posts for many interactions at once, in any order: every call counted exactly once.

The proxy posts after every LLM call, and the interaction's aggregated totals when it goes
stale or continues; nothing orders them. Here 10 interactions x 40 per-call posts and their
aggregated posts arrive from parallel clients (real connections) in a shuffled order, and
each interaction's totals must equal the plain sum of its calls, computed here.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections import Counter
from decimal import Decimal

import pytest

from accounts.models import Account
from tests.concurrency import run_in_parallel
from tests.factories import create_api_key

URL = "/v1/billing/litellm/usage"
INTERACTIONS, CALLS, CLIENTS = 10, 40, 12
SUMMED = ("total_llm_calls", "total_prompt_tokens", "total_completion_tokens", "duration_ms", "error_count")


def send(url: str, key: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "X-API-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read(), parse_float=Decimal)
    except urllib.error.HTTPError as error:
        return error.code, {}


def interaction_posts(user: dict, iid: str, rng: random.Random) -> tuple[list[dict], dict]:
    """The proxy's posts for one interaction, and the plain sums of its calls."""
    calls = []
    for _ in range(CALLS):
        calls.append(
            {
                "total_llm_calls": 1,
                "total_prompt_tokens": rng.randint(1, 5000),
                "total_completion_tokens": rng.randint(1, 2000),
                "duration_ms": rng.randint(100, 3000),
                "error_count": rng.choice([0, 0, 0, 1]),
                "actual_cost_cents": Decimal(rng.randint(1, 99999)) / 10000,
            }
        )
    expected = {name: sum(call[name] for call in calls) for name in (*SUMMED, "actual_cost_cents")}
    base = {**user, "interaction_id": iid, "models_used": ["groq/llama-3.3-70b"], "fallback_count": 0}
    posts = [{**base, **call, "actual_cost_cents": float(call["actual_cost_cents"])} for call in calls]
    # Aggregated posts after 10, 25 and all 40 calls: the totals so far, whole cents.
    for done in (10, 25, CALLS):
        so_far = {name: sum(call[name] for call in calls[:done]) for name in SUMMED}
        cost = int(sum(call["actual_cost_cents"] for call in calls[:done]))
        posts.append({**base, **so_far, "total_llm_calls": done, "actual_cost_cents": cost})
    return posts, expected


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", [1, 2])
def test_ten_interactions_of_forty_calls_posted_concurrently_in_any_order_count_each_call_once(live_server, user, seed):
    rng = random.Random(seed)
    key, url = create_api_key(permissions="read,write"), live_server.url
    posts, expected = [], {}
    for i in range(INTERACTIONS):
        iid = f"int-{seed}-{i}"
        interaction, expected[iid] = interaction_posts(user, iid, rng)
        posts += interaction
    rng.shuffle(posts)

    answers = run_in_parallel(CLIENTS, lambda c: [send(url + URL, key, body) for body in posts[c::CLIENTS]])

    answers = [answer for client in answers for answer in client]
    assert Counter(status for status, _ in answers) == {201: len(posts)}
    log_ids = {body["interaction_id"]: set() for body in posts}
    for (_, answer), body in zip(answers, [b for c in range(CLIENTS) for b in posts[c::CLIENTS]], strict=True):
        log_ids[body["interaction_id"]].add(answer["usage_log_id"])
    assert all(len(ids) == 1 for ids in log_ids.values())  # one record per interaction
    account = Account.objects.get(external_id=user["external_id"])
    listing = urllib.request.Request(f"{url}/v1/billing/accounts/{account.pk}/usage", headers={"X-API-Key": key})
    with urllib.request.urlopen(listing, timeout=60) as response:
        records = json.loads(response.read(), parse_float=Decimal)["results"]
    got = {r["interaction_id"]: {name: r[name] for name in expected[r["interaction_id"]]} for r in records}
    assert got == expected
    assert {r["interaction_id"]: r["usage_log_id"] for r in records} == {iid: ids.pop() for iid, ids in log_ids.items()}


@pytest.mark.django_db
def test_a_post_for_a_known_interaction_is_one_insert_and_locks_nothing(api, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = {**user, "interaction_id": "int-1", "total_llm_calls": 1, "actual_cost_cents": 0.0421}
    assert api.post(URL, body, format="json").status_code == 201

    with CaptureQueriesContext(connection) as queries:
        assert api.post(URL, body, format="json").status_code == 201

    statements = [q["sql"].upper() for q in queries.captured_queries]
    writes = [s.replace('"', "") for s in statements if not s.startswith("SELECT")]
    assert [s.split()[:3] for s in writes] == [["INSERT", "INTO", "USAGE_USAGEENTRY"]]
    assert not any("FOR UPDATE" in s for s in statements)

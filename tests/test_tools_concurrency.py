"""Real parallel tool charges against a live server on PostgreSQL: the free allowance, the
daily top-up and the idempotency key each hold under races."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import pytest
import time_machine

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from tests.concurrency import run_in_parallel
from tests.factories import create_api_key, funded_account, tool_product
from tools.models import ToolAllowance, ToolCharge
from tools.reconcile import check_tool_allowances

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def post(url: str, key: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "X-API-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def search_body(user: dict, key: str) -> dict:
    return {**user, "product_type": "web_search", "idempotency_key": key}


def statuses(results: list[tuple[int, dict]]) -> Counter:
    return Counter(status for status, _ in results)


def test_twenty_searches_at_once_on_three_free_and_no_balance_give_three_200s(live_server, user):
    tool_product("web_search", free_initial=3, free_daily_topup=0, free_cap=3)
    funded_account(user)  # no paid balance
    key = create_api_key()
    url = f"{live_server.url}/v1/tools/charge"

    results = run_in_parallel(20, lambda i: post(url, key, search_body(user, f"s-{i}")))

    assert statuses(results) == {200: 3, 402: 17}
    assert all("detail" in data for status, data in results if status == 402)
    allowance = ToolAllowance.objects.get()
    assert (allowance.free_remaining, allowance.total_uses) == (0, 3)
    assert ToolCharge.objects.count() == 3
    assert LedgerEntry.objects.filter(kind=EntryKind.TOOL_GRANT).count() == 1  # the initial grant, once
    assert Account.objects.get().balance_minor == 0
    assert check_tool_allowances() == []


def test_twenty_retries_of_one_search_at_once_charge_it_once(live_server, user):
    tool_product("web_search")
    key = create_api_key()
    url = f"{live_server.url}/v1/tools/charge"

    results = run_in_parallel(20, lambda i: post(url, key, search_body(user, "the-same-search")))

    assert statuses(results) == {200: 20}
    assert len({json.dumps(data, sort_keys=True) for _, data in results}) == 1
    assert ToolCharge.objects.count() == 1
    assert ToolAllowance.objects.get().free_remaining == 9


def test_the_daily_top_up_across_utc_midnight_is_granted_once_under_concurrent_searches(live_server, user):
    tool_product("web_search")  # 10 free, 3 a day, cap 13
    key = create_api_key()
    url = f"{live_server.url}/v1/tools/charge"
    with time_machine.travel(datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), tick=False):
        day_one = run_in_parallel(12, lambda i: post(url, key, search_body(user, f"d1-{i}")))
    with time_machine.travel(datetime(2026, 3, 2, 0, 0, 0, 1000, tzinfo=UTC), tick=False):
        day_two = run_in_parallel(20, lambda i: post(url, key, search_body(user, f"d2-{i}")))

    assert statuses(day_one) == {200: 10, 402: 2}
    assert statuses(day_two) == {200: 3, 402: 17}
    daily = LedgerEntry.objects.filter(kind=EntryKind.TOOL_GRANT, details__source="daily")
    assert [e.details["free_delta"] for e in daily] == [3]
    allowance = ToolAllowance.objects.get()
    assert (allowance.free_remaining, allowance.total_uses, str(allowance.topped_up_on)) == (0, 13, "2026-03-02")
    assert check_tool_allowances() == []

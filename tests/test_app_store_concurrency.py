"""Real parallel App Store verifications against a live server on PostgreSQL: one
transactionId is credited once, whoever asks and however many times at once."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from stores.models import Store, StorePurchase
from tests import app_store as fixtures
from tests.app_store import USER_VERIFY_URL
from tests.concurrency import run_in_parallel

apple, app_store = fixtures.apple, fixtures.app_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def post(url: str, token: str | None, body: dict) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_twenty_parallel_verifies_of_one_transaction_credit_it_once(live_server, app_store):
    transaction_id = app_store.buy()
    token = app_store.fake.mint_id_token("001234.abcd.5678", aud=fixtures.BUNDLE_ID)

    results = run_in_parallel(
        20, lambda i: post(f"{live_server.url}{USER_VERIFY_URL}", token, {"transaction_id": transaction_id})
    )

    assert Counter(status for status, _ in results) == {200: 20}, results
    assert all(body["success"] is True and body["credits_added"] == 99 for _, body in results)
    assert Counter(body["already_processed"] for _, body in results) == {False: 1, True: 19}
    assert Account.objects.get().balance_minor == 99 * 100
    assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).count() == 1
    assert StorePurchase.objects.filter(store=Store.APP_STORE).count() == 1


def test_parallel_verifies_of_one_transaction_by_many_accounts_credit_exactly_one(live_server, app_store):
    transaction_id = app_store.buy()
    tokens = [app_store.fake.mint_id_token(f"user-{i}", aud=fixtures.BUNDLE_ID) for i in range(10)]

    results = run_in_parallel(
        10, lambda i: post(f"{live_server.url}{USER_VERIFY_URL}", tokens[i], {"transaction_id": transaction_id})
    )

    assert Counter(body["success"] for _, body in results) == {True: 1, False: 9}, results
    assert {body.get("code") for _, body in results if not body["success"]} == {"purchase_of_another_account"}
    assert sum(Account.objects.values_list("balance_minor", flat=True)) == 99 * 100
    assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).count() == 1


def test_verifies_and_refund_notifications_at_once_end_refunded_without_an_error(live_server, app_store):
    transaction_id = app_store.buy()
    token = app_store.fake.mint_id_token("001234.abcd.5678", aud=fixtures.BUNDLE_ID)
    refunded_at = int(time.time() * 1000) + 60_000  # newer than every lookup below
    refund = app_store.notice(transaction_id, "REFUND", at=refunded_at)

    def step(i: int) -> tuple[int, dict]:
        if i % 2:
            return post(f"{live_server.url}{USER_VERIFY_URL}", token, {"transaction_id": transaction_id})
        return post(f"{live_server.url}{fixtures.WEBHOOK_URL}", None, {"signedPayload": refund})

    results = run_in_parallel(12, step)

    assert {status for status, _ in results} == {200}, results
    account = Account.objects.get()
    assert account.balance_minor == 0
    assert sum(LedgerEntry.objects.filter(account=account).values_list("balance_delta_minor", flat=True)) == 0
    assert StorePurchase.objects.get(store=Store.APP_STORE).store_revoked is True

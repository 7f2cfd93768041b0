"""Real parallel requests against PostgreSQL: no race double-charges or loses a credit."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import psycopg
import pytest
from rest_framework.test import APIClient

from accounts.models import Account
from charges.models import Charge
from ledger.models import LedgerEntry
from tests.concurrency import run_in_parallel
from tests.conftest import charge_body
from tests.factories import create_api_key, funded_account

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def agent(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


def assert_ledger_matches(account: Account) -> None:
    account.refresh_from_db()
    entries = LedgerEntry.objects.filter(account=account)
    assert sum(e.balance_delta_minor for e in entries) == account.balance_minor
    assert sum(e.free_uses_delta for e in entries) == account.free_uses_remaining


def post_json(url: str, key: str, body: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "X-API-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_fifty_concurrent_charges_on_twenty_uses_charge_exactly_twenty(live_server, user):
    account = funded_account(user, uses=20, free_uses=0)
    key = create_api_key()
    url = f"{live_server.url}/v1/billing/charges"

    statuses = run_in_parallel(50, lambda i: post_json(url, key, charge_body(user, f"parallel-{i}")))

    assert Counter(statuses) == {201: 20, 402: 30}
    account.refresh_from_db()
    assert account.balance_minor == 0
    assert account.total_uses == 20
    assert Charge.objects.filter(account=account).count() == 20
    assert_ledger_matches(account)


def test_twenty_concurrent_charges_with_one_key_charge_once(user):
    account = funded_account(user, uses=20, free_uses=0)
    key = create_api_key()

    responses = run_in_parallel(
        20, lambda i: agent(key).post("/v1/billing/charges", charge_body(user, "same"), format="json")
    )

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 19}
    charge_ids = {r.json()["charge_id"] for r in responses}
    assert len(charge_ids) == 1
    assert {r["X-Existing-Charge-ID"] for r in responses if r.status_code == 409} == charge_ids
    account.refresh_from_db()
    assert account.balance_minor == 1900
    assert_ledger_matches(account)


def test_twenty_concurrent_first_checks_make_one_account(user):
    key = create_api_key()

    responses = run_in_parallel(20, lambda i: agent(key).post("/v1/billing/credits/check", user, format="json"))

    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["account_id"] for r in responses}) == 1
    account = Account.objects.get(external_id=user["external_id"])
    assert account.free_uses_remaining == 3
    assert LedgerEntry.objects.filter(account=account).count() == 1
    assert_ledger_matches(account)


def test_concurrent_first_charges_for_a_new_user_spend_the_free_uses_once(user):
    key = create_api_key()

    responses = run_in_parallel(10, lambda i: agent(key).post("/v1/billing/charges", charge_body(user, f"c{i}")))

    assert Counter(r.status_code for r in responses) == {201: 3, 402: 7}
    account = Account.objects.get(external_id=user["external_id"])
    assert account.free_uses_remaining == 0
    assert_ledger_matches(account)


def test_concurrent_grants_with_one_key_grant_once(user):
    key = create_api_key(permissions="admin")
    body = {**user, "amount_minor": 500, "reason": "support", "idempotency_key": "ticket-9"}

    responses = run_in_parallel(10, lambda i: agent(key).post("/v1/billing/credits", body, format="json"))

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 9}
    account = Account.objects.get(external_id=user["external_id"])
    assert account.balance_minor == 500
    assert_ledger_matches(account)


def test_concurrent_grants_and_charges_never_lose_a_credit(user):
    account = funded_account(user, uses=10, free_uses=0)
    charger, granter = create_api_key(), create_api_key(permissions="admin")

    def request(i: int):
        if i % 2:
            return agent(charger).post("/v1/billing/charges", charge_body(user, f"c{i}"), format="json")
        grant = {**user, "amount_minor": 100, "reason": "top-up", "idempotency_key": f"g{i}"}
        return agent(granter).post("/v1/billing/credits", grant, format="json")

    responses = run_in_parallel(20, request)

    assert {r.status_code for r in responses} == {201}
    account.refresh_from_db()
    assert account.balance_minor == 1000 + 10 * 100 - 10 * 100
    assert_ledger_matches(account)


def wait_until_blocked_by_this_connection(*, timeout: float = 30) -> None:
    """Return once another connection waits for a lock this test's transaction holds; fail at the deadline.

    Polls pg_locks' view of the wait (pg_blocking_pids) from a connection of its own, so the
    test goes on only when the race it means is really under way, however slow the machine.
    """
    from django.db import connection

    # The server's own pid for this transaction: through PgBouncer (transaction pooling) the
    # connection's startup pid is PgBouncer's, not the backend that holds the lock.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (holder,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as observer:
        while time.monotonic() < deadline:
            (waiting,) = observer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [holder]
            ).fetchone()
            if waiting:
                return
            time.sleep(0.02)
    pytest.fail(f"no connection waited for this test's lock within {timeout} s")


def test_a_charge_waiting_on_the_lock_while_the_account_is_suspended_is_refused(user):
    """The charge reads the account only once it holds the lock: it sees the suspension."""
    from django.db import connections, transaction

    from accounts.models import AccountStatus
    from accounts.services import account_set_status

    account = funded_account(user, uses=5, free_uses=0)
    key = create_api_key()
    result = {}

    def charge_in_its_own_connection() -> None:
        try:
            result["response"] = agent(key).post("/v1/billing/charges", charge_body(user, "during"), format="json")
        finally:
            connections.close_all()

    charge = threading.Thread(target=charge_in_its_own_connection)
    with transaction.atomic():
        Account.objects.select_for_update().get(pk=account.pk)  # the charge's lock waits for this
        charge.start()
        wait_until_blocked_by_this_connection()
        account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, reason="abuse", actor="test")
    charge.join(timeout=30)

    assert result["response"].status_code == 403
    account.refresh_from_db()
    assert (account.balance_minor, account.total_uses) == (500, 0)
    assert not Charge.objects.filter(account=account).exists()
    assert_ledger_matches(account)

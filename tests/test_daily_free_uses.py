"""Daily free uses (BILLING_DAILY_FREE_USES): per UTC day, spent first, reset lazily, all on the ledger."""

from __future__ import annotations

import datetime
from collections import Counter

import pytest
import time_machine
from django.db.models import F

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from tests.concurrency import run_in_parallel
from tests.conftest import charge_body, run_command
from tests.factories import create_api_key, funded_account
from tests.test_concurrency import assert_ledger_matches, post_json

pytestmark = pytest.mark.django_db

CHECK = "/v1/billing/credits/check"
CHARGE = "/v1/billing/charges"
DAY_ONE_LATE = datetime.datetime(2026, 12, 1, 23, 59, 30, tzinfo=datetime.UTC)
DAY_TWO_EARLY = datetime.datetime(2026, 12, 2, 0, 0, 30, tzinfo=datetime.UTC)


@pytest.fixture
def daily(settings):
    settings.BILLING_DAILY_FREE_USES = 2
    return 2


def counts(body: dict) -> tuple[int, int, int]:
    return body["daily_free_uses_remaining"], body["free_uses_remaining"], body["credits_remaining"]


def paid_from(account: Account) -> list[str]:
    entries = LedgerEntry.objects.filter(account=account, kind=EntryKind.CHARGE).order_by("id")
    return [e.details["paid_from"] for e in entries]


def reconciles() -> bool:
    try:
        run_command("reconcile")
    except Exception:
        return False
    return True


def test_off_by_default_the_check_carries_zero_for_both(api, user):
    body = api.post(CHECK, user, format="json").json()

    assert (body["daily_free_uses_remaining"], body["daily_free_uses_limit"]) == (0, 0)
    assert body["free_uses_remaining"] == 3


def test_a_new_user_sees_the_daily_allowance_before_any_write(api, user, daily):
    body = api.post(CHECK, user, format="json").json()

    assert (body["daily_free_uses_remaining"], body["daily_free_uses_limit"]) == (2, 2)
    assert body["has_credit"] is True
    account = Account.objects.get(external_id=user["external_id"])
    assert not LedgerEntry.objects.filter(account=account, kind=EntryKind.DAILY_FREE_USES_GRANTED).exists()


def test_daily_uses_are_spent_first_then_free_uses_then_the_paid_balance(api, user, daily):
    account = funded_account(user, uses=1)  # 3 free uses, 100 paid

    statuses = [api.post(CHARGE, charge_body(user, f"k{i}"), format="json").status_code for i in range(7)]

    assert statuses == [201] * 6 + [402]
    assert paid_from(account) == ["daily_free_uses"] * 2 + ["free_uses"] * 3 + ["balance"]
    body = api.post(CHECK, user, format="json").json()
    assert counts(body) == (0, 0, 0)
    assert body["has_credit"] is False
    top_ups = LedgerEntry.objects.filter(account=account, kind=EntryKind.DAILY_FREE_USES_GRANTED)
    assert [(e.daily_free_uses_delta, e.daily_free_uses_after) for e in top_ups] == [(2, 2)]
    assert reconciles()


def test_a_daily_free_charge_is_a_free_use_for_the_agent(api, user, daily):
    funded_account(user, uses=5, free_uses=0)

    body = api.post(CHARGE, charge_body(user, "k1"), format="json").json()

    assert body["paid_with_free_use"] is True
    assert body["balance_after"] == 500


def test_the_allowance_comes_back_after_utc_midnight_once(api, user, daily):
    with time_machine.travel(DAY_ONE_LATE, tick=False) as clock:
        account = funded_account(user, uses=10, free_uses=0)
        assert api.post(CHARGE, charge_body(user, "day1-a"), format="json").status_code == 201
        assert counts(api.post(CHECK, user, format="json").json()) == (1, 0, 10)

        clock.move_to(DAY_TWO_EARLY)
        entries_before = LedgerEntry.objects.filter(account=account).count()
        # The check shows the new day's allowance without writing it.
        assert counts(api.post(CHECK, user, format="json").json()) == (2, 0, 10)
        assert LedgerEntry.objects.filter(account=account).count() == entries_before

        for key in ("day2-a", "day2-b", "day2-c"):
            assert api.post(CHARGE, charge_body(user, key), format="json").status_code == 201

    top_ups = list(LedgerEntry.objects.filter(account=account, kind=EntryKind.DAILY_FREE_USES_GRANTED).order_by("id"))
    # Day two tops up from yesterday's leftover (1) to the allowance (2): one entry of +1.
    assert [(e.daily_free_uses_delta, e.daily_free_uses_after, e.details["day"]) for e in top_ups] == [
        (2, 2, "2026-12-01"),
        (1, 2, "2026-12-02"),
    ]
    assert paid_from(account) == ["daily_free_uses", "daily_free_uses", "daily_free_uses", "balance"]
    account.refresh_from_db()
    assert (account.daily_free_uses_remaining, account.daily_free_uses_day) == (0, datetime.date(2026, 12, 2))
    assert account.balance_minor == 900
    assert reconciles()


def test_a_suspended_account_is_not_topped_up_and_shows_none(api, user, daily):
    from accounts.models import AccountStatus
    from accounts.services import account_set_status

    account = funded_account(user)
    account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, reason="abuse", actor="test")

    assert api.post(CHARGE, charge_body(user, "k1"), format="json").status_code == 403
    assert counts(api.post(CHECK, user, format="json").json()) == (0, 0, 0)
    assert not LedgerEntry.objects.filter(account=account, kind=EntryKind.DAILY_FREE_USES_GRANTED).exists()


def test_reconcile_proves_the_daily_count_and_record_ledger_drift_closes_a_gap(api, user, daily):
    account = funded_account(user)
    api.post(CHARGE, charge_body(user, "k1"), format="json")
    assert reconciles()
    Account.objects.filter(pk=account.pk).update(daily_free_uses_remaining=F("daily_free_uses_remaining") + 4)

    with pytest.raises(Exception, match="discrepancies"):
        run_command("reconcile")
    run_command("record_ledger_drift", "--account-id", str(account.pk), "--reason", "SQL edit")

    drift = LedgerEntry.objects.filter(account=account).first()
    assert (drift.kind, drift.daily_free_uses_delta, drift.daily_free_uses_after) == (EntryKind.ADJUSTMENT, 4, 5)
    assert reconciles()


def test_reconcile_names_the_account_whose_daily_count_drifted(user, daily):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    account = funded_account(user)
    Account.objects.filter(pk=account.pk).update(daily_free_uses_remaining=3)
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("reconcile", stdout=out)

    assert f"[daily_free_uses] account {account.pk}" in out.getvalue()
    assert "daily free uses 3 but its ledger sums to 0" in out.getvalue()


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_concurrent_first_charges_of_a_day_top_up_once(live_server, user, settings):
    settings.BILLING_DAILY_FREE_USES = 5
    key = create_api_key()
    url = f"{live_server.url}{CHARGE}"
    with time_machine.travel(DAY_ONE_LATE, tick=True) as clock:
        account = funded_account(user, uses=30, free_uses=0)
        assert post_json(url, key, charge_body(user, "yesterday")) == 201  # day one: 4 daily left
        clock.move_to(DAY_TWO_EARLY)

        statuses = run_in_parallel(20, lambda i: post_json(url, key, charge_body(user, f"today-{i}")))

    assert Counter(statuses) == {201: 20}
    top_ups = LedgerEntry.objects.filter(account=account, kind=EntryKind.DAILY_FREE_USES_GRANTED)
    assert sorted(e.details["day"] for e in top_ups) == ["2026-12-01", "2026-12-02"]
    assert Counter(paid_from(account)) == {"daily_free_uses": 1 + 5, "balance": 15}
    account.refresh_from_db()
    assert account.balance_minor == 3000 - 15 * 100
    assert account.daily_free_uses_remaining == 0
    assert_ledger_matches(account)
    assert sum(e.daily_free_uses_delta for e in LedgerEntry.objects.filter(account=account)) == 0
    assert reconciles()


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_concurrent_first_checks_and_charges_of_a_new_user_grant_the_day_once(live_server, user, settings):
    settings.BILLING_DAILY_FREE_USES = 3
    key = create_api_key()

    def request(i: int) -> int:
        path = CHARGE if i % 2 else CHECK
        body = charge_body(user, f"c{i}") if i % 2 else user
        return post_json(f"{live_server.url}{path}", key, body)

    statuses = run_in_parallel(20, request)

    # 3 daily + 3 free uses pay 6 of the 10 charges; the other 4 find nothing left.
    assert Counter(statuses) == {200: 10, 201: 6, 402: 4}
    account = Account.objects.get(external_id=user["external_id"])
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.DAILY_FREE_USES_GRANTED).count() == 1
    assert_ledger_matches(account)
    assert reconciles()


def test_the_accounts_ledger_shows_the_top_up_and_the_daily_charge(api, user, daily):
    account = funded_account(user)
    api.post(CHARGE, charge_body(user, "k1"), format="json")

    results = api.get(f"/v1/billing/accounts/{account.pk}/transactions").json()["results"]

    assert [(e["kind"], e["daily_free_uses_delta"], e["daily_free_uses_after"]) for e in results[:2]] == [
        ("charge", -1, 1),
        ("daily_free_uses_granted", 2, 2),
    ]
    assert results[0]["free_uses_after"] == 3

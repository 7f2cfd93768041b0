"""manage.py billing_report: uses, purchases, revenue, new accounts and conversion per day."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Account
from charges.models import Charge
from tests.conftest import charge_body, run_command
from tests.factories import funded_account, paid_purchase

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()


@pytest.fixture
def activity(api, user):
    """Today: two new accounts, one buys a pack; three free uses and one paid use."""
    buyer = funded_account(user)
    funded_account({"oauth_provider": "oauth:google", "external_id": "idle@example.com"})
    paid_purchase(buyer)
    for i in range(4):
        assert api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json").status_code == 201
    # Yesterday: one older account (moved back in time, as a report sees history).
    old = funded_account({"oauth_provider": "oauth:google", "external_id": "old@example.com"})
    yesterday = timezone.now() - dt.timedelta(days=1)
    Account.objects.filter(pk=old.pk).update(created_at=yesterday)
    return buyer


def report(fmt: str, start: dt.date = TODAY - dt.timedelta(days=1), end: dt.date = TODAY) -> str:
    out, _ = run_command("billing_report", "--from", start.isoformat(), "--to", end.isoformat(), "--format", fmt)
    return out


def test_the_json_report_counts_each_day_and_the_total(activity):
    data = json.loads(report("json"))

    today = data["days"][-1]
    assert today["day"] == TODAY.isoformat()
    assert (today["uses"], today["free_uses"], today["paid_uses"]) == (4, 3, 1)
    assert (today["purchases"], today["revenue_minor"]) == (1, 500)
    assert (today["new_accounts"], today["new_accounts_paid"], today["conversion_percent"]) == (2, 1, 50.0)
    assert data["days"][0]["new_accounts"] == 1
    assert data["total"]["new_accounts"] == 3
    assert data["total"]["conversion_percent"] == 33.3
    assert data["currency"] == "USD"


def test_the_csv_report_has_a_header_a_row_per_day_and_a_total(activity):
    rows = list(csv.DictReader(io.StringIO(report("csv"))))

    assert [r["day"] for r in rows] == [(TODAY - dt.timedelta(days=1)).isoformat(), TODAY.isoformat(), "total"]
    assert rows[-1]["uses"] == "4"
    assert rows[-1]["revenue_minor"] == "500"


def test_the_table_report_is_the_default(activity):
    out, _ = run_command("billing_report", "--from", TODAY.isoformat(), "--to", TODAY.isoformat())

    assert "revenue_minor" in out.splitlines()[0]
    assert out.splitlines()[-2].strip().startswith("total")


def test_days_outside_the_period_are_left_out(activity):
    data = json.loads(report("json", TODAY - dt.timedelta(days=10), TODAY - dt.timedelta(days=2)))

    assert data["total"]["uses"] == 0
    assert len(data["days"]) == 9
    assert Charge.objects.count() == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-13-01", "--to", "2026-01-02"], "--from must be a date"),
        (["--from", "2026-01-02", "--to", "yesterday"], "--to must be a date"),
        (["--from", "2026-01-02", "--to", "2026-01-01"], "before"),
        (["--from", "2026-01-01", "--to", "2026-01-02", "--format", "xml"], "invalid choice"),
        (["--to", "2026-01-02"], "--from"),
    ],
)
def test_bad_arguments_fail_clearly(db, args, message):
    with pytest.raises(CommandError, match=message):
        run_command("billing_report", *args)


@pytest.mark.parametrize(
    ("start", "end"),
    [("9999-12-30", "9999-12-31"), ("9999-12-31", "9999-12-31")],
)
def test_dates_at_the_end_of_the_calendar_fail_clearly(db, start, end):
    with pytest.raises(CommandError, match="--"):
        run_command("billing_report", "--from", start, "--to", end)

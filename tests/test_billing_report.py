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
from usage.models import UsageRecord

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


# --- --margins: LLM provider cost against the revenue of the uses charged ---------------


@pytest.fixture
def llm_usage(api, user):
    """Three interactions. i1: a free use, two calls of m-a (0.0421 each). i2: a paid use, one call
    of m-a (0.5) and one of m-b (0.3). i3 (yesterday): no charge, an aggregate of 4 calls, 2 cents, no model."""
    funded_account(user, uses=2, free_uses=1)
    for iid in ("i1", "i2"):
        body = charge_body(user, f"litellm:{iid}", description=f"LiteLLM interaction: {iid}")
        assert api.post("/v1/billing/charges", body, format="json").status_code == 201
    posts = [
        ("i1", 1, "m-a", 0.0421),
        ("i1", 1, "m-a", 0.0421),
        ("i2", 1, "m-a", 0.5),
        ("i2", 1, "m-b", 0.3),
    ]
    for iid, calls, model, cost in posts:
        body = {**user, "interaction_id": iid, "total_llm_calls": calls, "total_prompt_tokens": 100}
        body.update(total_completion_tokens=10, models_used=[model], actual_cost_cents=cost)
        assert api.post("/v1/billing/litellm/usage", body, format="json").status_code == 201
    aggregate = {**user, "interaction_id": "i3", "total_llm_calls": 4, "total_prompt_tokens": 400}
    assert (
        api.post("/v1/billing/litellm/usage", {**aggregate, "actual_cost_cents": 2}, format="json").status_code == 201
    )
    UsageRecord.objects.filter(interaction_id="i3").update(created_at=timezone.now() - dt.timedelta(days=1))


def margins(fmt: str = "json") -> str:
    start = (TODAY - dt.timedelta(days=1)).isoformat()
    out, _ = run_command("billing_report", "--margins", "--from", start, "--to", TODAY.isoformat(), "--format", fmt)
    return out


def test_the_margin_report_gives_cost_revenue_and_margin_per_day(llm_usage):
    data = json.loads(margins())

    assert data["revenue_per_use_minor"] == 25  # 500 ÷ 20
    yesterday, today = data["days"]
    assert (yesterday["interactions"], yesterday["calls"], yesterday["cost_cents"]) == (1, 4, 2)
    assert (yesterday["revenue_minor"], yesterday["uncharged"], yesterday["margin_percent"]) == (0, 1, None)
    assert (today["interactions"], today["calls"], today["prompt_tokens"]) == (2, 4, 400)
    assert (today["paid_uses"], today["free_uses"]) == (1, 1)
    assert today["cost_cents"] == 0.8842
    assert today["revenue_minor"] == 25
    assert today["margin_minor"] == 24.1158
    assert today["cost_per_interaction_cents"] == 0.4421
    assert data["total"]["cost_cents"] == 2.8842
    assert data["total"]["margin_minor"] == 22.1158
    assert data["total"]["margin_percent"] == 88.5


def test_a_multi_model_interaction_is_split_in_equal_shares_per_model(llm_usage):
    models = {m["key"]: m for m in json.loads(margins())["models"]}

    assert list(models) == ["(unknown)", "m-a", "m-b"]  # by cost, highest first
    assert (models["m-a"]["interactions"], models["m-a"]["calls"]) == (2, 3)
    assert models["m-a"]["cost_cents"] == 0.4842  # all of i1, half of i2
    assert models["m-a"]["revenue_minor"] == 12.5
    assert (models["m-b"]["interactions"], models["m-b"]["cost_cents"], models["m-b"]["revenue_minor"]) == (
        1,
        0.4,
        12.5,
    )
    assert sum(m["cost_cents"] for m in models.values()) == pytest.approx(2.8842)


def test_the_margin_report_as_csv_and_table(llm_usage):
    rows = list(csv.DictReader(io.StringIO(margins("csv"))))
    assert [(r["group"], r["key"]) for r in rows] == [
        ("day", (TODAY - dt.timedelta(days=1)).isoformat()),
        ("day", TODAY.isoformat()),
        ("model", "(unknown)"),
        ("model", "m-a"),
        ("model", "m-b"),
        ("total", "total"),
    ]
    assert rows[-1]["revenue_minor"] == "25"

    table = margins("table")
    assert "cost_per_interaction_cents" in table.splitlines()[0]
    assert "Revenue per use = pack price ÷ pack uses = 500 ÷ 20 = 25.00" in table


def test_the_margin_report_with_no_usage_is_zeros(db):
    data = json.loads(margins())

    assert data["models"] == []
    assert data["total"]["interactions"] == 0
    assert data["total"]["margin_percent"] is None

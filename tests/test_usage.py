"""POST /v1/billing/litellm/usage and GET /v1/billing/accounts/{id}/usage: the LLM proxy's usage records."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from decimal import Decimal

import pytest

from accounts.models import Account
from tests.concurrency import run_in_parallel
from tests.conftest import charge_body
from tests.factories import create_api_key
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db

URL = "/v1/billing/litellm/usage"


def per_call(user: dict, iid: str = "int-1", **extra: object) -> dict:
    """The proxy's body after every LLM call (hooks/billing_callback.py _stream_usage_to_billing)."""
    return {
        **user,
        "interaction_id": iid,
        "total_llm_calls": 1,
        "total_prompt_tokens": 1200,
        "total_completion_tokens": 340,
        "models_used": ["groq/llama-3.3-70b"],
        "actual_cost_cents": 0.0421,
        "duration_ms": 850,
        "error_count": 0,
        "fallback_count": 0,
        **extra,
    }


def aggregated(user: dict, iid: str = "int-1", calls: int = 3, **extra: object) -> dict:
    """The proxy's body when an interaction ends or continues: the totals so far, integer cents."""
    return {
        **user,
        "interaction_id": iid,
        "total_llm_calls": calls,
        "total_prompt_tokens": 1200 * calls,
        "total_completion_tokens": 340 * calls,
        "models_used": ["groq/llama-3.3-70b"],
        "actual_cost_cents": int(Decimal("0.0421") * calls),
        "duration_ms": 900 * calls,
        "error_count": 0,
        "fallback_count": 0,
        **extra,
    }


def post(api, body: dict):
    return api.post(URL, body, format="json")


def the_record() -> UsageRecord:
    return UsageRecord.objects.get()


def test_a_per_call_post_is_logged_and_its_cost_stored_exactly(api, user):
    response = post(api, per_call(user))

    assert response.status_code == 201
    assert response.json() == {"logged": True, "usage_log_id": the_record().pk}
    record = the_record()
    assert record.actual_cost_cents == Decimal("0.0421")
    assert str(record.actual_cost_cents.normalize()) == "0.0421"
    assert (record.total_llm_calls, record.total_prompt_tokens, record.total_completion_tokens) == (1, 1200, 340)
    assert record.models_used == ["groq/llama-3.3-70b"]


def test_sub_cent_costs_add_up_exactly(api, user):
    for _ in range(3):
        post(api, per_call(user, actual_cost_cents=0.1))

    assert the_record().actual_cost_cents == Decimal("0.3")  # 0.1 + 0.1 + 0.1 in floats is 0.30000000000000004


def test_the_cost_is_read_as_the_decimal_sent_not_a_binary_float(api, user):
    # 19 significant digits: a float would keep about 16 (123456789.01234567).
    raw = json.dumps(per_call(user)).replace("0.0421", "123456789.0123456789")

    assert api.generic("POST", URL, raw, content_type="application/json").status_code == 201
    assert the_record().actual_cost_cents == Decimal("123456789.0123456789")


def test_an_unknown_users_first_post_creates_the_account_as_a_check_would(api, user):
    post(api, per_call(user))

    account = Account.objects.get(external_id=user["external_id"])
    assert account.free_uses_remaining == 3
    assert account.ledger_entries.get().kind == "free_uses_granted"
    assert the_record().account == account


def test_per_call_posts_for_one_interaction_make_one_record_with_their_sums(api, user):
    for model in ["a", "b", "a"]:
        assert post(api, per_call(user, models_used=[model])).status_code == 201

    record = the_record()
    assert record.total_llm_calls == 3
    assert record.total_prompt_tokens == 3600
    assert record.actual_cost_cents == Decimal("0.1263")
    assert record.duration_ms == 2550
    assert record.models_used == ["a", "b"]


@pytest.mark.parametrize("aggregate_first", [False, True])
def test_per_call_and_aggregated_posts_in_either_order_never_count_a_call_twice(api, user, aggregate_first):
    posts = [per_call(user) for _ in range(3)]
    posts.insert(0 if aggregate_first else 3, aggregated(user, calls=3))
    for body in posts:
        assert post(api, body).status_code == 201

    record = the_record()
    assert record.total_llm_calls == 3
    assert record.total_prompt_tokens == 3600
    assert record.total_completion_tokens == 1020
    # The aggregate sends whole cents (0); the per-call sum keeps the fractions.
    assert record.actual_cost_cents == Decimal("0.1263")
    assert record.duration_ms == 2700  # the aggregate's wall time beats the calls' sum


def test_an_aggregate_covering_calls_whose_per_call_posts_were_lost_wins(api, user):
    post(api, per_call(user))
    post(api, aggregated(user, calls=12, actual_cost_cents=3, error_count=2, fallback_count=1))
    post(api, aggregated(user, calls=5))  # an older aggregate arriving late changes nothing

    record = the_record()
    assert (record.total_llm_calls, record.total_prompt_tokens) == (12, 14400)
    assert record.actual_cost_cents == Decimal(3)
    assert (record.error_count, record.fallback_count) == (2, 1)


def test_an_aggregate_of_a_single_call_is_not_added_to_the_per_call_post(api, user):
    # An interaction gone stale after one call: the proxy posts its totals (1 call, int cents).
    post(api, per_call(user, actual_cost_cents=1.2345))
    post(api, aggregated(user, calls=1, actual_cost_cents=1))

    record = the_record()
    assert (record.total_llm_calls, record.actual_cost_cents) == (1, Decimal("1.2345"))


@pytest.mark.parametrize("aggregate_first", [False, True])
def test_a_cheap_one_call_interactions_aggregate_is_not_a_second_call(api, user, aggregate_first):
    # One call of 0.0421 cents, then the interaction goes stale: the proxy posts its totals
    # with int(0.0421) = 0 cents, a body that looks like a per-call post without a cost.
    posts = [per_call(user), aggregated(user, calls=1)]
    for body in reversed(posts) if aggregate_first else posts:
        assert post(api, body).status_code == 201

    record = the_record()
    assert (record.total_llm_calls, record.total_prompt_tokens) == (1, 1200)
    assert record.actual_cost_cents == Decimal("0.0421")


def test_per_call_posts_of_calls_without_a_reported_cost_are_each_counted(api, user):
    # The proxy sends the integer 0 when the provider reported no cost (`response_cost or 0`).
    for _ in range(3):
        post(api, per_call(user, actual_cost_cents=0))

    record = the_record()
    assert (record.total_llm_calls, record.actual_cost_cents) == (3, 0)


def test_another_interaction_gets_its_own_record(api, user):
    post(api, per_call(user, iid="a"))
    post(api, per_call(user, iid="a__cont_calls80_1a2b3c4d"))

    assert UsageRecord.objects.count() == 2


def test_unknown_fields_and_null_optional_fields_are_accepted(api, user):
    body = per_call(user, tenant_id=None, wa_id=None, models_used=None, request_model="x", extra={"a": 1})

    assert post(api, body).status_code == 201
    assert the_record().models_used == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interaction_id": None}, "interaction_id"),
        ({"total_llm_calls": -1}, "total_llm_calls"),
        ({"total_prompt_tokens": "12"}, "total_prompt_tokens"),
        ({"total_completion_tokens": 1.5}, "total_completion_tokens"),
        ({"error_count": True}, "error_count"),
        ({"duration_ms": 10**13}, "duration_ms"),
        ({"actual_cost_cents": "0.0421"}, "actual_cost_cents"),
        ({"actual_cost_cents": -0.01}, "actual_cost_cents"),
        ({"actual_cost_cents": 1e300}, "actual_cost_cents"),
        ({"actual_cost_cents": 0.12345678901}, "actual_cost_cents"),
        ({"models_used": "gpt-4o"}, "models_used"),
        ({"models_used": [1]}, "models_used"),
        ({"external_id": ""}, "external_id"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(api, user, change, field):
    body = {**per_call(user), **change}
    if change.get("interaction_id", "") is None:
        del body["interaction_id"]

    response = post(api, body)

    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert not UsageRecord.objects.exists()


@pytest.mark.parametrize("raw", ["[]", "{}", '"usage"', "null", '{"interaction_id": {"a": 1}}'])
def test_a_body_that_is_not_a_usage_object_is_a_422(api, raw):
    response = api.generic("POST", URL, raw, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_a_huge_exponent_is_a_422_not_a_500(api, user):
    raw = json.dumps(per_call(user)).replace("0.0421", "1e999999")

    response = api.generic("POST", URL, raw, content_type="application/json")

    assert response.status_code == 422


def test_a_read_key_may_not_post_usage(make_client, user):
    assert post(make_client(permissions="read"), per_call(user)).status_code == 403


def test_a_tenant_key_records_on_its_tenants_account_only(make_client, user):
    tenant = make_client(tenant_id="acme")

    assert post(tenant, per_call(user)).status_code == 201
    assert the_record().account.tenant_id == "acme"
    assert post(tenant, per_call(user, tenant_id="other")).status_code == 403


# --- GET /v1/billing/accounts/{id}/usage ---------------------------------------------


def usage_of(api, account_id) -> dict:
    response = api.get(f"/v1/billing/accounts/{account_id}/usage")
    assert response.status_code == 200
    return response.json()


def test_the_account_lists_its_records_newest_first_with_the_posts_field_names(api, user):
    post(api, per_call(user, iid="first"))
    post(api, per_call(user, iid="second"))
    account = Account.objects.get(external_id=user["external_id"])

    page = usage_of(api, account.pk)

    assert set(page) == {"next", "previous", "results"}
    assert [r["interaction_id"] for r in page["results"]] == ["second", "first"]
    item = page["results"][0]
    assert item["actual_cost_cents"] == 0.0421
    assert {k: item[k] for k in ("total_llm_calls", "total_prompt_tokens", "models_used", "error_count")} == {
        "total_llm_calls": 1,
        "total_prompt_tokens": 1200,
        "models_used": ["groq/llama-3.3-70b"],
        "error_count": 0,
    }
    assert set(item) >= {"usage_log_id", "charge_id", "created_at", "updated_at", "duration_ms", "fallback_count"}


def test_the_listing_pages_with_a_cursor(api, user):
    for i in range(3):
        post(api, per_call(user, iid=f"i{i}"))
    account = Account.objects.get(external_id=user["external_id"])

    first = api.get(f"/v1/billing/accounts/{account.pk}/usage?page_size=2").json()
    second = api.get(first["next"]).json()

    assert [r["interaction_id"] for r in first["results"] + second["results"]] == ["i2", "i1", "i0"]


@pytest.mark.parametrize("charge_first", [True, False])
def test_the_record_links_to_the_interactions_charge_whichever_arrives_first(api, user, charge_first):
    charge = lambda: api.post(  # noqa: E731
        "/v1/billing/charges",
        charge_body(user, "litellm:int-1", amount=1, description="LiteLLM interaction: int-1"),
        format="json",
    )
    if charge_first:
        charge_id = charge().json()["charge_id"]
        post(api, per_call(user))
    else:
        post(api, per_call(user))
        account = Account.objects.get(external_id=user["external_id"])
        assert usage_of(api, account.pk)["results"][0]["charge_id"] is None
        charge_id = charge().json()["charge_id"]
    api.post("/v1/billing/charges", charge_body(user, "litellm:other", amount=1), format="json")
    account = Account.objects.get(external_id=user["external_id"])

    assert usage_of(api, account.pk)["results"][0]["charge_id"] == charge_id


def test_another_tenants_account_is_not_found(make_client, api, user):
    post(api, per_call(user))
    account = Account.objects.get(external_id=user["external_id"])

    assert make_client(tenant_id="acme").get(f"/v1/billing/accounts/{account.pk}/usage").status_code == 404


# --- Concurrency: real parallel requests against a live server -------------------------


def post_live(url: str, key: str, body: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "X-API-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_per_call_posts_make_one_record_of_twenty_calls(live_server, user):
    key, url = create_api_key(), f"{live_server.url}{URL}"

    statuses = run_in_parallel(20, lambda i: post_live(url, key, per_call(user)))

    assert Counter(statuses) == {201: 20}
    assert Account.objects.filter(external_id=user["external_id"]).count() == 1
    record = the_record()
    assert record.total_llm_calls == 20
    assert record.total_prompt_tokens == 24000
    assert record.actual_cost_cents == Decimal("0.842")


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_concurrent_per_call_and_aggregated_posts_never_count_a_call_twice(live_server, user):
    key, url = create_api_key(), f"{live_server.url}{URL}"
    bodies = [per_call(user) for _ in range(10)] + [aggregated(user, calls=10) for _ in range(5)]

    statuses = run_in_parallel(len(bodies), lambda i: post_live(url, key, bodies[i]))

    assert Counter(statuses) == {201: 15}
    record = the_record()
    assert record.total_llm_calls == 10
    assert record.total_prompt_tokens == 12000
    assert record.actual_cost_cents == Decimal("0.421")


def test_staff_see_usage_records_read_only_in_the_admin(api, user):
    from django.test import Client

    from tests.factories import staff_user

    post(api, per_call(user))
    client = Client()
    client.force_login(staff_user("root", superuser=True))

    listing = client.get("/admin/usage/usagerecord/")
    detail = client.get(f"/admin/usage/usagerecord/{the_record().pk}/change/")

    assert listing.status_code == 200 and "int-1" in listing.content.decode()
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert client.get("/admin/usage/usagerecord/add/").status_code == 403

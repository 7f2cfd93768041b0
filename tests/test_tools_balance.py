"""GET /v1/tools/check/{product_type} and /v1/tools/balance[/{product_type}]: what a user may
use now, identity in the query string, tenant-scoped, writing nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from tests.factories import funded_account, tool_product
from tools.models import ToolAllowance

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def web_search(db):
    return tool_product("web_search")


def search(api, user: dict, key: str) -> None:
    body = {**user, "product_type": "web_search", "idempotency_key": key}
    assert api.post("/v1/tools/charge", body, format="json").status_code == 200


def test_a_new_user_can_search_with_the_initial_allowance_and_nothing_is_written(api, user):
    response = api.get("/v1/tools/check/web_search", user)

    assert response.status_code == 200
    assert response.json() == {
        "has_credit": True,
        "product_type": "web_search",
        "free_remaining": 10,
        "paid_credits": 0,
        "main_pool_credits": 0,
        "purchased_remaining": 0,
        "total_available": 10,
    }
    assert not Account.objects.filter(external_id=user["external_id"]).exists()


def test_the_balance_counts_paid_uses_at_the_products_price_and_the_main_pool(api, user, web_search):
    web_search.price_minor = 50
    web_search.save()
    funded_account(user, uses=3)  # 300 minor units
    search(api, user, "s-1")

    response = api.get("/v1/tools/balance/web_search", user)

    assert response.json() == {
        "product_type": "web_search",
        "free_remaining": 9,
        "paid_credits": 6,
        "main_pool_credits": 3,
        "purchased_remaining": 0,
        "total_available": 15,
        "price_minor": 50,
        "total_uses": 1,
    }


def test_all_balances_list_every_active_product(api, user):
    tool_product("image_gen", free_initial=2, free_cap=2, price_minor=300)
    tool_product("retired", active=False)

    response = api.get("/v1/tools/balance", user)

    assert response.status_code == 200
    balances = response.json()["balances"]
    assert [b["product_type"] for b in balances] == ["image_gen", "web_search"]
    assert balances[0]["free_remaining"] == 2 and balances[0]["price_minor"] == 300


def test_a_check_shows_todays_top_up_before_the_next_search_takes_it(api, user):
    with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False):
        for i in range(10):
            search(api, user, f"s-{i}")
    with time_machine.travel(datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC), tick=False):
        data = api.get("/v1/tools/check/web_search", user).json()

    assert data["free_remaining"] == 3
    assert ToolAllowance.objects.get().free_remaining == 0  # a read writes nothing


@pytest.mark.parametrize("status", [AccountStatus.SUSPENDED, AccountStatus.CLOSED])
def test_an_inactive_account_reports_nothing_usable(api, user, status):
    account = funded_account(user, uses=5)
    search(api, user, "s-1")
    account_set_status(account_id=account.pk, status=status, reason="support", actor="test")

    check = api.get("/v1/tools/check/web_search", user).json()
    balance = api.get("/v1/tools/balance/web_search", user).json()
    balances = api.get("/v1/tools/balance", user).json()["balances"]

    assert check == {
        "has_credit": False,
        "product_type": "web_search",
        "free_remaining": 0,
        "paid_credits": 0,
        "main_pool_credits": 0,
        "purchased_remaining": 0,
        "total_available": 0,
    }
    for item in (balance, balances[0]):
        assert (item["free_remaining"], item["paid_credits"], item["main_pool_credits"], item["total_available"]) == (
            0,
            0,
            0,
            0,
        )
        assert item["total_uses"] == 1


@pytest.mark.parametrize("path", ["/v1/tools/check/nonesuch", "/v1/tools/balance/nonesuch", "/v1/tools/check/A%20b"])
def test_an_unknown_product_is_a_422(api, user, path):
    response = api.get(path, user)

    assert response.status_code == 422
    assert "product_type" in response.json()["errors"]


@pytest.mark.parametrize("path", ["/v1/tools/check/web_search", "/v1/tools/balance/web_search", "/v1/tools/balance"])
def test_a_missing_identity_is_a_422_with_field_errors(api, path):
    response = api.get(path, {"oauth_provider": "oauth:google"})

    assert response.status_code == 422
    assert "external_id" in response.json()["errors"]


def test_reads_are_tenant_scoped(make_client, user):
    acme = make_client(tenant_id="acme")
    search(acme, user, "s-1")

    own = acme.get("/v1/tools/balance/web_search", user).json()
    other_tenant = make_client(tenant_id="globex").get("/v1/tools/balance/web_search", user).json()
    forbidden = acme.get("/v1/tools/balance/web_search", {**user, "tenant_id": "globex"})
    unbound = make_client().get("/v1/tools/balance/web_search", {**user, "tenant_id": "acme"}).json()

    assert own["free_remaining"] == 9
    assert other_tenant["free_remaining"] == 10  # globex's user of that name has not searched
    assert forbidden.status_code == 403
    assert unbound["free_remaining"] == 9


def test_a_read_key_may_check(make_client, user):
    assert make_client(permissions="read").get("/v1/tools/check/web_search", user).status_code == 200


def test_without_a_key_it_is_a_401(client, user):
    assert client.get("/v1/tools/check/web_search", user).status_code == 401

"""POST /v1/tools/charge: the CIRIS proxy's web-search charge, free allowance first, then
the paid balance; a retry with its key answers the original and charges nothing."""

from __future__ import annotations

import hashlib
import time

import pytest
from prometheus_client import REGISTRY

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from ledger.models import EntryKind, LedgerEntry
from tests.factories import funded_account, tool_product
from tools.models import ToolAllowance, ToolCharge, ToolProduct

pytestmark = pytest.mark.django_db

URL = "/v1/tools/charge"


@pytest.fixture(autouse=True)
def web_search(db):
    return tool_product("web_search")


def proxy_body(user: dict, query: str = "weather in paris") -> dict:
    """Exactly what hooks/search_handler.py sends (docs/ciris-clients.md)."""
    key = f"search-{user['external_id'][:8]}-{hashlib.sha256(query.encode()).hexdigest()[:8]}-{int(time.time())}"
    return {
        "oauth_provider": user["oauth_provider"],
        "external_id": user["external_id"],
        "product_type": "web_search",
        "idempotency_key": key,
    }


def body(user: dict, key: str, product_type: str = "web_search", **extra: object) -> dict:
    return {**user, "product_type": product_type, "idempotency_key": key, **extra}


def allowance(user: dict, product_type: str = "web_search") -> ToolAllowance:
    return ToolAllowance.objects.get(account__external_id=user["external_id"], product__product_type=product_type)


def counter(result: str, product: str = "web_search") -> float:
    return REGISTRY.get_sample_value("billing_tool_charges_total", {"product": product, "result": result}) or 0


def test_the_proxys_first_search_is_free_and_grants_the_initial_ten(api, user):
    response = api.post(URL, proxy_body(user), format="json")

    assert response.status_code == 200
    data = response.json()
    assert {k: data[k] for k in ("success", "has_credit", "used_free", "used_paid", "cost_minor")} == {
        "success": True,
        "has_credit": True,
        "used_free": True,
        "used_paid": False,
        "cost_minor": 0,
    }
    assert data["free_remaining"] == 9
    assert data["paid_credits"] == 0
    assert data["total_uses"] == 1
    assert allowance(user).free_remaining == 9
    kinds = list(LedgerEntry.objects.filter(account__external_id=user["external_id"]).values_list("kind", flat=True))
    assert EntryKind.TOOL_GRANT in kinds and EntryKind.TOOL_CHARGE in kinds


def test_every_tool_charge_is_a_ledger_entry_a_free_one_moving_no_balance(api, user):
    api.post(URL, body(user, "s-1"), format="json")

    entry = LedgerEntry.objects.get(account__external_id=user["external_id"], kind=EntryKind.TOOL_CHARGE)
    assert entry.balance_delta_minor == 0
    assert entry.free_uses_delta == 0  # the account's own free uses are for interactions
    assert entry.details["product"] == "web_search"
    assert entry.details["used_free"] is True
    assert entry.details["free_delta"] == -1
    assert ToolCharge.objects.get(idempotency_key="s-1").ledger_entry == entry


def test_a_retry_with_the_same_key_answers_the_original_and_charges_nothing(api, user):
    first = api.post(URL, body(user, "s-1"), format="json")
    api.post(URL, body(user, "s-2"), format="json")

    again = api.post(URL, body(user, "s-1"), format="json")

    assert again.status_code == 200
    assert again.json() == first.json()
    assert allowance(user).free_remaining == 8
    assert allowance(user).total_uses == 2
    assert ToolCharge.objects.filter(account__external_id=user["external_id"]).count() == 2


def test_the_same_key_for_another_product_is_a_422(api, user):
    tool_product("image_gen", free_initial=1, free_cap=1)
    api.post(URL, body(user, "k-1"), format="json")

    response = api.post(URL, body(user, "k-1", product_type="image_gen"), format="json")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert not ToolAllowance.objects.filter(product__product_type="image_gen").exists()


@pytest.mark.parametrize("product_type", ["image_gen", "Web_Search", "web search", "x" * 65])
def test_an_unknown_product_is_a_422_naming_the_field(api, user, product_type):
    response = api.post(URL, body(user, "k-1", product_type=product_type), format="json")

    assert response.status_code == 422
    data = response.json()
    assert data["code"] == "validation_error"
    assert "product_type" in data["errors"]
    assert not ToolCharge.objects.exists()


def test_an_inactive_product_is_a_422(api, user, web_search):
    web_search.active = False
    web_search.save()

    response = api.post(URL, body(user, "k-1"), format="json")

    assert response.status_code == 422
    assert "product_type" in response.json()["errors"]


@pytest.mark.parametrize(
    "bad",
    [
        {"idempotency_key": None},
        {"idempotency_key": ""},
        {"product_type": 7},
        {"product_type": None},
        {"external_id": ""},
        {"oauth_provider": ["oauth:google"]},
    ],
)
def test_bad_input_is_a_422_with_field_errors(api, user, bad):
    response = api.post(URL, {**body(user, "k-1"), **bad}, format="json")

    assert response.status_code == 422
    assert set(bad) <= set(response.json()["errors"])


def test_unknown_fields_and_optional_identity_fields_are_accepted(api, user):
    response = api.post(
        URL, body(user, "k-1", wa_id="wa-1", tenant_id=None, request_id="r-1", query="ignored"), format="json"
    )

    assert response.status_code == 200
    assert Account.objects.get(external_id=user["external_id"]).wa_id == "wa-1"


def test_when_the_allowance_is_spent_the_paid_balance_pays_the_price_once(api, user, web_search):
    web_search.price_minor = 50
    web_search.save()
    funded_account(user, uses=1)  # 100 minor units: two searches at 50
    for i in range(10):
        api.post(URL, body(user, f"free-{i}"), format="json")

    paid = api.post(URL, body(user, "paid-1"), format="json")
    replay = api.post(URL, body(user, "paid-1"), format="json")

    assert paid.status_code == 200
    data = paid.json()
    assert (data["used_free"], data["used_paid"], data["cost_minor"]) == (False, True, 50)
    assert data["free_remaining"] == 0
    assert data["paid_credits"] == 1
    assert replay.json() == data
    account = Account.objects.get(external_id=user["external_id"])
    assert account.balance_minor == 50
    entry = LedgerEntry.objects.get(account=account, kind=EntryKind.TOOL_CHARGE, balance_delta_minor=-50)
    assert entry.details["used_free"] is False


def test_a_product_without_a_price_costs_one_use(api, user, settings):
    settings.BILLING_USE_PRICE_MINOR = 1
    tool_product("web_search", free_initial=0, free_daily_topup=0, free_cap=0)
    funded_account(user, uses=2)

    data = api.post(URL, body(user, "k-1"), format="json").json()

    assert data["cost_minor"] == 1
    assert Account.objects.get(external_id=user["external_id"]).balance_minor == 1


def test_nothing_left_is_a_402_with_detail_and_writes_nothing(api, user):
    tool_product("web_search", free_initial=1, free_daily_topup=0, free_cap=1)
    assert api.post(URL, body(user, "k-1"), format="json").status_code == 200
    entries = LedgerEntry.objects.count()

    response = api.post(URL, body(user, "k-2"), format="json")

    assert response.status_code == 402
    assert response.json()["detail"] == "No web_search credits available. Balance: 0, Required: 100"
    assert response.json()["code"] == "insufficient_credits"
    assert LedgerEntry.objects.count() == entries
    assert allowance(user).total_uses == 1


def test_the_last_free_use_reports_no_credit_left(api, user):
    tool_product("web_search", free_initial=1, free_daily_topup=0, free_cap=1)

    data = api.post(URL, body(user, "k-1"), format="json").json()

    assert data["success"] is True
    assert data["has_credit"] is False
    assert data["free_remaining"] == 0


@pytest.mark.parametrize("status", [AccountStatus.SUSPENDED, AccountStatus.CLOSED])
def test_a_suspended_or_closed_account_is_refused_with_403(api, user, status):
    account = funded_account(user, uses=5)
    account_set_status(account_id=account.pk, status=status, reason="support", actor="test")

    response = api.post(URL, body(user, "k-1"), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "account_inactive"
    assert not ToolAllowance.objects.filter(account=account).exists()


def test_a_read_only_key_may_not_charge(make_client, user):
    response = make_client(permissions="read").post(URL, body(user, "k-1"), format="json")

    assert response.status_code == 403


def test_a_tenant_bound_key_charges_its_tenants_account(make_client, user):
    client = make_client(tenant_id="acme")

    assert client.post(URL, body(user, "k-1"), format="json").status_code == 200
    assert client.post(URL, body(user, "k-2", tenant_id="other"), format="json").status_code == 403
    assert Account.objects.get(external_id=user["external_id"]).tenant_id == "acme"


def test_metrics_count_tool_charges_by_product_and_result(api, user):
    tool_product("web_search", free_initial=1, free_daily_topup=0, free_cap=1)
    before = {r: counter(r) for r in ("free", "duplicate", "insufficient")}
    unknown_before = counter("refused", product="unknown")

    api.post(URL, body(user, "k-1"), format="json")
    api.post(URL, body(user, "k-1"), format="json")
    api.post(URL, body(user, "k-2"), format="json")
    api.post(URL, body(user, "k-3", product_type="nonesuch"), format="json")

    assert {r: counter(r) - before[r] for r in before} == {"free": 1, "duplicate": 1, "insufficient": 1}
    assert counter("refused", product="unknown") - unknown_before == 1


def test_a_retry_after_the_account_was_suspended_still_answers_the_original(api, user):
    first = api.post(URL, body(user, "k-1"), format="json").json()
    account = Account.objects.get(external_id=user["external_id"])
    account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, reason="support", actor="test")

    again = api.post(URL, body(user, "k-1"), format="json")
    new = api.post(URL, body(user, "k-2"), format="json")

    assert (again.status_code, again.json()) == (200, first)
    assert new.status_code == 403


def test_a_retry_after_the_product_was_deactivated_still_answers_the_original(api, user):
    first = api.post(URL, body(user, "k-1"), format="json").json()
    ToolProduct.objects.filter(product_type="web_search").update(active=False)

    again = api.post(URL, body(user, "k-1"), format="json")
    new = api.post(URL, body(user, "k-2"), format="json")

    assert (again.status_code, again.json()) == (200, first)
    assert new.status_code == 422

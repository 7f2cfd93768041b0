"""POST /v1/billing/accounts, GET /v1/billing/accounts/{id} and its ledger."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

STATE_FIELDS = {
    "account_id",
    "oauth_provider",
    "external_id",
    "wa_id",
    "tenant_id",
    "status",
    "plan_name",
    "free_uses_remaining",
    "credits_remaining",
    "balance_minor",
    "total_uses",
    "created_at",
}


def test_creating_an_account_is_201_then_200(api, user):
    first = api.post("/v1/billing/accounts", {**user, "wa_id": "wa-1", "tenant_id": "acme"}, format="json")
    again = api.post("/v1/billing/accounts", {**user, "tenant_id": "acme"}, format="json")

    assert first.status_code == 201
    assert again.status_code == 200
    assert STATE_FIELDS <= first.json().keys()
    assert first.json()["account_id"] == again.json()["account_id"]
    assert first.json()["tenant_id"] == "acme"
    assert first.json()["wa_id"] == "wa-1"
    assert first.json()["free_uses_remaining"] == 3
    assert first.json()["plan_name"] == "free"
    assert first.json()["status"] == "active"


def test_an_account_can_be_read_by_id(api, user):
    account = funded_account(user, uses=4)

    response = api.get(f"/v1/billing/accounts/{account.pk}")

    assert response.status_code == 200
    body = response.json()
    assert body["account_id"] == str(account.pk)
    assert body["credits_remaining"] == 4
    assert body["balance_minor"] == 400
    assert body["plan_name"] == "pro"
    assert body["wa_id"] is None and body["tenant_id"] is None


def test_an_unknown_account_is_a_json_404(api):
    response = api.get(f"/v1/billing/accounts/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_ledger_lists_newest_first_with_every_field(api, user):
    account = funded_account(user, uses=2)
    api.post("/v1/billing/charges", charge_body(user, "c1"), format="json")

    response = api.get(f"/v1/billing/accounts/{account.pk}/transactions")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    kinds = [entry["kind"] for entry in body["results"]]
    assert kinds == ["charge", "grant", "free_uses_granted"]
    newest = body["results"][0]
    assert {
        "entry_id",
        "kind",
        "balance_delta_minor",
        "free_uses_delta",
        "balance_after_minor",
        "free_uses_after",
        "charge_id",
        "purchase_id",
        "actor",
        "reason",
        "created_at",
    } <= newest.keys()
    assert newest["free_uses_delta"] == -1
    assert newest["charge_id"] is not None
    assert newest["actor"].startswith("api_key:")


def test_the_ledger_pages_with_a_cursor(api, user):
    account = funded_account(user, uses=10)
    for i in range(6):
        api.post("/v1/billing/charges", charge_body(user, f"c{i}"), format="json")

    seen = []
    url = f"/v1/billing/accounts/{account.pk}/transactions?page_size=3"
    while url:
        page = api.get(url).json()
        seen += [entry["entry_id"] for entry in page["results"]]
        url = page["next"]

    assert len(seen) == 8
    assert seen == sorted(seen, reverse=True)


def test_a_tenant_bound_key_never_sees_another_tenants_account(make_client, user):
    acme = make_client(tenant_id="acme")
    globex = make_client(tenant_id="globex")
    account_id = acme.post("/v1/billing/accounts", user, format="json").json()["account_id"]

    assert acme.get(f"/v1/billing/accounts/{account_id}").status_code == 200
    assert globex.get(f"/v1/billing/accounts/{account_id}").status_code == 404
    assert globex.get(f"/v1/billing/accounts/{account_id}/transactions").status_code == 404


def test_a_tenant_bound_key_acts_for_its_own_tenant(make_client, user):
    acme = make_client(tenant_id="acme")

    created = acme.post("/v1/billing/accounts", user, format="json").json()
    forbidden = acme.post("/v1/billing/accounts", {**user, "tenant_id": "globex"}, format="json")

    assert created["tenant_id"] == "acme"
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "tenant_forbidden"


def test_a_forged_cursor_is_a_404_not_a_500(api, user):
    import base64

    account = funded_account(user)
    for raw in ["p=abc", "p=", "p=1e5", "r=1&p=abc", "o=-1"]:
        cursor = base64.b64encode(raw.encode()).decode()
        response = api.get(f"/v1/billing/accounts/{account.pk}/transactions", {"cursor": cursor})
        assert response.status_code == 404, raw
        assert response.json()["code"] == "not_found"


def test_an_account_id_in_upper_case_is_found(api, user):
    account = funded_account(user)

    assert api.get(f"/v1/billing/accounts/{str(account.pk).upper()}").status_code == 200

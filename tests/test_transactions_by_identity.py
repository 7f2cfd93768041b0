"""GET /v1/billing/transactions?oauth_provider=&external_id=: the agent's history page."""

from __future__ import annotations

import pytest
from django.conf import settings

from accounts.identity import Identity
from accounts.models import Account, AccountStatus
from accounts.services import account_set_status, credits_grant
from tests.conftest import charge_body
from tests.factories import funded_account, paid_purchase

pytestmark = pytest.mark.django_db

URL = "/v1/billing/transactions"


def history(api, user: dict, **params: object):
    return api.get(URL, {**user, **params})


@pytest.fixture
def buyer(api, user):
    """A user left with one free use (an adjustment) who spent it, bought a pack and spent one paid use."""
    account = funded_account(user, free_uses=1)
    assert api.post("/v1/billing/charges", charge_body(user, "free-1"), format="json").status_code == 201
    paid_purchase(account, payment_intent_id="pi_3Nxyz")
    paid = charge_body(user, "litellm:int-9", description="LiteLLM interaction: int-9", metadata={"channel_id": "c"})
    assert api.post("/v1/billing/charges", paid, format="json").status_code == 201
    return account


def test_the_history_lists_charges_and_credits_newest_first(api, user, buyer):
    body = history(api, user).json()

    assert body["total_count"] == 5 and body["has_more"] is False
    paid, purchase, free, adjustment, granted = body["transactions"]
    assert paid == {
        "transaction_id": paid["transaction_id"],
        "type": "charge",
        "amount_minor": -settings.BILLING_USE_PRICE_MINOR,
        "currency": "USD",
        "description": "LiteLLM interaction: int-9",
        "created_at": paid["created_at"],
        "balance_after": 2000 - settings.BILLING_USE_PRICE_MINOR,
        "transaction_type": "charge",
        "external_transaction_id": "litellm:int-9",
        "metadata": {"channel_id": "c"},
        "free_uses_delta": 0,
    }
    assert (purchase["type"], purchase["transaction_type"], purchase["amount_minor"]) == ("credit", "purchase", 2000)
    assert (purchase["external_transaction_id"], purchase["description"], purchase["metadata"]) == (
        "pi_3Nxyz",
        "Purchase",
        None,
    )
    assert (free["type"], free["amount_minor"], free["free_uses_delta"]) == ("charge", 0, -1)
    assert (adjustment["transaction_type"], adjustment["free_uses_delta"]) == ("adjustment", -2)
    assert granted["transaction_type"] == "free_uses_granted"
    assert all(isinstance(t["description"], str) and t["description"] for t in body["transactions"])


def test_the_user_sees_a_grants_description_but_never_the_staffs_reason(api, user):
    funded_account(user)
    identity = Identity(oauth_provider=user["oauth_provider"], external_id=user["external_id"])
    credits_grant(identity=identity, actor="staff:ann", reason="Ticket 4711: outage", amount_minor=5)
    credits_grant(identity=identity, actor="staff:ann", reason="Suspected abuse", amount_minor=-5, kind="adjustment")
    credits_grant(identity=identity, actor="staff:ann", reason="r", amount_minor=5, description="Sorry for the outage")

    descriptions = [t["description"] for t in history(api, user).json()["transactions"]]

    assert descriptions == ["Sorry for the outage", "Adjustment", "Grant", "Free uses granted"]


def test_limit_and_offset_page_through_it(api, user, buyer):
    first = history(api, user, limit=3).json()
    rest = history(api, user, limit=3, offset=3).json()

    assert (len(first["transactions"]), first["has_more"], first["total_count"]) == (3, True, 5)
    assert (len(rest["transactions"]), rest["has_more"]) == (2, False)
    ids = [t["transaction_id"] for t in first["transactions"] + rest["transactions"]]
    assert ids == [t["transaction_id"] for t in history(api, user).json()["transactions"]]


def test_an_unknown_user_has_no_transactions_and_no_account_is_made(api, user):
    response = history(api, user, wa_id="wa-1")

    assert response.status_code == 200
    assert response.json() == {"transactions": [], "total_count": 0, "has_more": False}
    assert not Account.objects.exists()


def test_status_changes_are_not_transactions(api, user):
    account = funded_account(user)
    account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, actor="staff:test", reason="abuse")

    assert [t["transaction_type"] for t in history(api, user).json()["transactions"]] == ["free_uses_granted"]


def test_daily_free_use_top_ups_are_not_transactions_but_the_charges_they_pay_are(api, user, settings):
    settings.BILLING_DAILY_FREE_USES = 2
    api.post(
        "/v1/billing/charges", {**user, "amount_minor": 100, "currency": "USD", "idempotency_key": "k"}, format="json"
    )

    kinds = [t["transaction_type"] for t in history(api, user).json()["transactions"]]

    assert kinds == ["charge", "free_uses_granted"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 100_001}, "offset"),
    ],
)
def test_limit_and_offset_out_of_bounds_are_a_422(api, user, params, field):
    response = history(api, user, **params)

    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_the_identity_is_required(api):
    response = api.get(URL, {"oauth_provider": "oauth:google"})

    assert response.status_code == 422
    assert "external_id" in response.json()["errors"]


def test_a_tenant_key_sees_only_its_tenants_user(make_client, user):
    funded_account({**user, "tenant_id": "acme"})
    funded_account(user)  # the same person without a tenant: another account
    acme = make_client(tenant_id="acme", permissions="read")

    assert history(acme, user).json()["total_count"] == 1
    assert history(acme, user, tenant_id="other").status_code == 403
    assert history(make_client(permissions="read"), user, tenant_id="acme").json()["total_count"] == 1

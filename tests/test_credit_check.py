"""POST /v1/billing/credits/check, as the guide's response examples describe it."""

from __future__ import annotations

import pytest

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from ledger.models import EntryKind, LedgerEntry
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

URL = "/v1/billing/credits/check"
GUIDE_FIELDS = {
    "daily_free_uses_remaining",
    "daily_free_uses_limit",
    "has_credit",
    "credits_remaining",
    "free_uses_remaining",
    "total_uses",
    "plan_name",
    "reason",
    "purchase_required",
    "purchase_price_minor",
    "purchase_uses",
}


def test_a_new_user_has_three_free_uses(api, user):
    response = api.post(URL, {**user, "context": {}}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert GUIDE_FIELDS <= body.keys()
    assert {k: body[k] for k in GUIDE_FIELDS} == {
        "has_credit": True,
        "credits_remaining": 0,
        "free_uses_remaining": 3,
        "daily_free_uses_remaining": 0,
        "daily_free_uses_limit": 0,
        "total_uses": 0,
        "plan_name": "free",
        "reason": None,
        "purchase_required": False,
        "purchase_price_minor": None,
        "purchase_uses": None,
    }


def test_first_check_creates_the_account_with_a_ledger_entry(api, user):
    api.post(URL, user, format="json")
    api.post(URL, user, format="json")

    account = Account.objects.get(external_id=user["external_id"])
    entries = list(LedgerEntry.objects.filter(account=account))
    assert [(e.kind, e.free_uses_delta, e.free_uses_after) for e in entries] == [(EntryKind.FREE_USES_GRANTED, 3, 3)]


def test_free_tier_exhausted_asks_for_a_purchase(api, user):
    for i in range(3):
        assert api.post("/v1/billing/charges", charge_body(user, f"k-{i}"), format="json").status_code == 201

    body = api.post(URL, user, format="json").json()

    assert {k: body[k] for k in GUIDE_FIELDS} == {
        "has_credit": False,
        "credits_remaining": 0,
        "free_uses_remaining": 0,
        "daily_free_uses_remaining": 0,
        "daily_free_uses_limit": 0,
        "total_uses": 3,
        "plan_name": "free",
        "reason": "No free uses or credits remaining",
        "purchase_required": True,
        "purchase_price_minor": 500,
        "purchase_uses": 20,
    }


def test_a_paid_user_sees_credits_in_uses_and_plan_pro(api, user):
    funded_account(user, uses=15, free_uses=0)

    body = api.post(URL, user, format="json").json()

    assert body["has_credit"] is True
    assert body["credits_remaining"] == 15
    assert isinstance(body["credits_remaining"], int)
    assert body["plan_name"] == "pro"
    assert body["purchase_required"] is False
    assert body["purchase_price_minor"] is None
    assert body["balance_minor"] == 1500


def test_a_suspended_account_has_no_credit_says_why_and_reports_no_usable_count(api, user):
    account = funded_account(user, uses=100, free_uses=2)
    account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, reason="abuse", actor="test")

    response = api.post(URL, user, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["has_credit"] is False
    assert body["reason"] == "Account suspended"
    # The CIRIS agent ignores has_credit and serves anyone with a count above 0.
    assert (body["credits_remaining"], body["free_uses_remaining"], body["daily_free_uses_remaining"]) == (0, 0, 0)
    assert body["balance_minor"] == 10000, "the stored balance stays visible"
    assert body["plan_name"] == "pro"
    assert body["purchase_required"] is False
    assert body["purchase_price_minor"] is None and body["purchase_uses"] is None


def test_a_suspended_accounts_own_endpoint_still_shows_what_it_holds(api, user):
    account = funded_account(user, uses=100, free_uses=2)
    account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, reason="abuse", actor="test")

    body = api.get(f"/v1/billing/accounts/{account.pk}").json()

    assert (body["credits_remaining"], body["free_uses_remaining"], body["balance_minor"]) == (100, 2, 10000)


def test_a_closed_account_says_closed_and_reports_no_usable_count(api, user, settings):
    settings.BILLING_DAILY_FREE_USES = 5
    account = funded_account(user, uses=3)
    account_set_status(account_id=account.pk, status=AccountStatus.CLOSED, reason="user asked", actor="test")

    body = api.post(URL, user, format="json").json()

    assert body["has_credit"] is False
    assert body["reason"] == "Account closed"
    assert (body["credits_remaining"], body["free_uses_remaining"], body["daily_free_uses_remaining"]) == (0, 0, 0)
    assert body["daily_free_uses_limit"] == 5


def test_amount_minor_on_a_check_is_what_has_credit_answers_for(api, user):
    funded_account(user, uses=1, free_uses=0)  # balance 100

    assert api.post(URL, {**user, "amount_minor": 100}, format="json").json()["has_credit"] is True
    body = api.post(URL, {**user, "amount_minor": 101}, format="json").json()
    assert body["has_credit"] is False
    assert body["reason"] == "Insufficient credits. Balance: 100, Required: 101"
    assert body["purchase_required"] is True


def test_the_credit_gate_providers_extra_fields_are_ignored(api, user):
    body = {
        **user,
        "wa_id": "wa-123",
        "tenant_id": None,
        "agent_id": "datum",
        "customer_email": "someone@example.com",
        "marketing_opt_in": True,
        "marketing_opt_in_source": "signup",
        "user_role": "observer",
        "amount_minor": 1,
        "context": {"channel_id": "discord:1"},
    }

    response = api.post(URL, body, format="json")

    assert response.status_code == 200
    assert response.json()["has_credit"] is True
    account = Account.objects.get(external_id=user["external_id"])
    assert account.wa_id == "wa-123"
    assert account.email == "someone@example.com"


def test_wa_id_is_recorded_as_last_seen_not_identity(api, user):
    api.post(URL, {**user, "wa_id": "wa-1"}, format="json")
    api.post(URL, {**user, "wa_id": "wa-2"}, format="json")

    accounts = Account.objects.filter(external_id=user["external_id"])
    assert accounts.count() == 1
    assert accounts.get().wa_id == "wa-2"


def test_a_tenant_is_part_of_identity(api, user):
    api.post(URL, {**user, "tenant_id": "tenant-acme"}, format="json")
    api.post(URL, user, format="json")

    assert set(Account.objects.filter(external_id=user["external_id"]).values_list("tenant_id", flat=True)) == {
        "tenant-acme",
        "",
    }


@pytest.mark.parametrize("missing", ["oauth_provider", "external_id"])
def test_identity_is_required(api, user, missing):
    body = dict(user)
    del body[missing]

    response = api.post(URL, body, format="json")

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert missing in response.json()["detail"]
    assert Account.objects.count() == 0

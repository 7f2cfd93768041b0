"""POST /v1/billing/credits: staff grants and adjustments, admin keys only."""

from __future__ import annotations

import pytest

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from ledger.models import LedgerEntry
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

URL = "/v1/billing/credits"


def grant_body(user: dict, key: str = "ticket-1", **extra: object) -> dict:
    return {**user, "amount_minor": 500, "reason": "Support: outage apology", "idempotency_key": key, **extra}


def test_an_admin_key_grants_paid_credit_with_a_reason(admin_api, user):
    response = admin_api.post(URL, grant_body(user), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "grant"
    assert body["balance_delta_minor"] == 500
    assert body["balance_after_minor"] == 500
    assert body["reason"] == "Support: outage apology"
    assert body["actor"].startswith("api_key:")
    account = Account.objects.get(external_id=user["external_id"])
    assert (account.balance_minor, account.plan_name) == (500, "pro")


def test_free_uses_can_be_granted_alone(admin_api, user):
    response = admin_api.post(
        URL, {**user, "free_uses": 2, "reason": "beta tester", "idempotency_key": "k"}, format="json"
    )

    assert response.status_code == 201
    account = Account.objects.get(external_id=user["external_id"])
    assert (account.free_uses_remaining, account.balance_minor, account.plan_name) == (5, 0, "free")


def test_a_regranted_key_is_409_with_the_original_and_grants_once(admin_api, user):
    first = admin_api.post(URL, grant_body(user), format="json")
    retry = admin_api.post(URL, grant_body(user), format="json")

    assert retry.status_code == 409
    assert retry.json()["entry_id"] == first.json()["entry_id"]
    assert Account.objects.get(external_id=user["external_id"]).balance_minor == 500


def test_the_same_key_with_another_amount_is_422(admin_api, user):
    admin_api.post(URL, grant_body(user), format="json")

    response = admin_api.post(URL, grant_body(user, amount_minor=900), format="json")

    assert response.status_code == 422
    assert Account.objects.get(external_id=user["external_id"]).balance_minor == 500


def test_an_adjustment_takes_credit_back_but_never_below_zero(admin_api, user):
    admin_api.post(URL, grant_body(user), format="json")

    taken = admin_api.post(
        URL, grant_body(user, "adj-1", amount_minor=-300, kind="adjustment", reason="chargeback"), format="json"
    )
    too_much = admin_api.post(
        URL, grant_body(user, "adj-2", amount_minor=-300, kind="adjustment", reason="again"), format="json"
    )

    assert taken.status_code == 201
    assert too_much.status_code == 422
    assert Account.objects.get(external_id=user["external_id"]).balance_minor == 200


@pytest.mark.parametrize(
    "change",
    [
        {"reason": ""},
        {"reason": None},
        {"amount_minor": 0},
        {"amount_minor": -5},
        {"idempotency_key": None},
        {"currency": "EUR"},
        {"kind": "purchase"},
    ],
)
def test_bad_grants_are_422_and_change_nothing(admin_api, user, change):
    body = grant_body(user)
    for field, value in change.items():
        if value is None:
            del body[field]
        else:
            body[field] = value

    response = admin_api.post(URL, body, format="json")

    assert response.status_code == 422
    assert LedgerEntry.objects.filter(kind="grant").count() == 0


@pytest.mark.parametrize("permissions", ["read", "read,write"])
def test_only_admin_keys_may_grant(make_client, user, permissions):
    response = make_client(permissions=permissions).post(URL, grant_body(user), format="json")

    assert response.status_code == 403
    assert not Account.objects.filter(external_id=user["external_id"]).exists()


def test_free_uses_cannot_overflow_their_column(admin_api, user):
    funded_account(user, free_uses=2**31 - 5)

    response = admin_api.post(URL, {**user, "free_uses": 10, "reason": "r", "idempotency_key": "k"}, format="json")

    assert response.status_code == 422
    assert Account.objects.get(external_id=user["external_id"]).free_uses_remaining == 2**31 - 5


def test_the_same_key_with_another_reason_is_422(admin_api, user):
    admin_api.post(URL, grant_body(user), format="json")

    assert admin_api.post(URL, grant_body(user, reason="different"), format="json").status_code == 422


def test_a_closed_account_takes_no_new_credit_but_may_be_settled(admin_api, user):
    account = funded_account(user, uses=5)
    account_set_status(account_id=account.pk, status=AccountStatus.CLOSED, reason="user left", actor="test")

    grant = admin_api.post(URL, grant_body(user, "after-close"), format="json")
    positive_adjustment = admin_api.post(URL, grant_body(user, "adj+", kind="adjustment"), format="json")
    settle = admin_api.post(URL, grant_body(user, "settle", kind="adjustment", amount_minor=-500), format="json")

    assert (grant.status_code, positive_adjustment.status_code, settle.status_code) == (422, 422, 201)
    assert Account.objects.get(pk=account.pk).balance_minor == 0

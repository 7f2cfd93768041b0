"""POST /v1/billing/charges: free uses first, then paid balance; exactly once per key."""

from __future__ import annotations

import pytest

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from charges.models import Charge
from ledger.models import EntryKind, LedgerEntry
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

URL = "/v1/billing/charges"


def balance(user: dict) -> tuple[int, int]:
    account = Account.objects.get(external_id=user["external_id"])
    return account.balance_minor, account.free_uses_remaining


def test_a_charge_answers_with_the_guides_fields(api, user):
    body = charge_body(user, "msg-1", metadata={"message_id": "msg-1", "agent_id": "datum"})

    response = api.post(URL, body, format="json")

    assert response.status_code == 201
    data = response.json()
    account = Account.objects.get(external_id=user["external_id"])
    assert data["charge_id"]
    assert data["account_id"] == str(account.pk)
    assert data["amount_minor"] == 100
    assert data["currency"] == "USD"
    assert data["balance_after"] == 0
    assert data["description"] == "Agent interaction - datum"
    assert data["metadata"] == {"message_id": "msg-1", "agent_id": "datum"}
    assert data["created_at"].endswith("Z")


def test_free_uses_pay_first(api, user):
    funded_account(user, uses=20)

    response = api.post(URL, charge_body(user, "k1"), format="json")

    assert response.status_code == 201
    assert response.json()["paid_with_free_use"] is True
    assert response.json()["balance_after"] == 2000
    assert balance(user) == (2000, 2)


def test_then_the_paid_balance_pays_as_in_the_guide(api, user):
    funded_account(user, uses=20, free_uses=0)

    response = api.post(URL, charge_body(user, "k1"), format="json")

    assert response.status_code == 201
    assert response.json()["balance_after"] == 1900
    assert response.json()["paid_with_free_use"] is False
    assert balance(user) == (1900, 0)


def test_the_fourth_charge_with_no_credit_is_402(api, user):
    for i in range(3):
        assert api.post(URL, charge_body(user, f"test-{i + 1}"), format="json").status_code == 201

    response = api.post(URL, charge_body(user, "test-4"), format="json")

    assert response.status_code == 402
    assert response.json()["detail"] == "Insufficient credits. Balance: 0, Required: 100"
    assert response.json()["code"] == "insufficient_credits"
    assert "insufficient" in response.json()["detail"].lower()
    assert Charge.objects.filter(account__external_id=user["external_id"]).count() == 3


def test_a_balance_short_of_the_amount_is_402_and_changes_nothing(api, user):
    funded_account(user, uses=1, free_uses=0)

    response = api.post(URL, charge_body(user, "k", amount=150), format="json")

    assert response.status_code == 402
    assert response.json()["detail"] == "Insufficient credits. Balance: 100, Required: 150"
    assert balance(user) == (100, 0)


def test_a_retried_charge_is_409_and_charges_once(api, user):
    funded_account(user, uses=20, free_uses=0)
    first = api.post(URL, charge_body(user, "idempotency-test-1"), format="json")

    retry = api.post(URL, charge_body(user, "idempotency-test-1"), format="json")

    assert first.status_code == 201
    assert retry.status_code == 409
    assert retry["X-Existing-Charge-ID"] == first.json()["charge_id"]
    body = retry.json()
    assert body["code"] == "duplicate_idempotency_key"
    assert body["charge_id"] == first.json()["charge_id"]
    assert body["balance_after"] == 1900
    assert balance(user) == (1900, 0)
    assert LedgerEntry.objects.filter(kind=EntryKind.CHARGE, account__external_id=user["external_id"]).count() == 1


def test_a_key_used_by_another_account_is_independent(api, user):
    other = {**user, "external_id": "other-" + user["external_id"]}

    assert api.post(URL, charge_body(user, "shared-key"), format="json").status_code == 201
    assert api.post(URL, charge_body(other, "shared-key"), format="json").status_code == 201


@pytest.mark.parametrize(
    "change",
    [{"amount_minor": 200}, {"description": "something else"}],
)
def test_the_same_key_with_other_parameters_is_422(api, user, change):
    funded_account(user, uses=20, free_uses=0)
    api.post(URL, charge_body(user, "k"), format="json")

    response = api.post(URL, {**charge_body(user, "k"), **change}, format="json")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert balance(user) == (1900, 0)


def test_a_replay_after_the_credit_ran_out_is_still_409_not_402(api, user):
    funded_account(user, free_uses=1)
    assert api.post(URL, charge_body(user, "only"), format="json").status_code == 201

    assert api.post(URL, charge_body(user, "only"), format="json").status_code == 409


@pytest.mark.parametrize("status", [AccountStatus.SUSPENDED, AccountStatus.CLOSED])
def test_a_suspended_or_closed_account_cannot_be_charged(api, user, status):
    account = funded_account(user, uses=5)
    account_set_status(account_id=account.pk, status=status, reason="support", actor="test")

    response = api.post(URL, charge_body(user, "k"), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "account_inactive"
    assert balance(user) == (500, 3)


def test_the_credit_gate_provider_omits_description_and_metadata(api, user):
    body = {
        **user,
        "amount_minor": 1,
        "currency": "USD",
        "idempotency_key": "gate-1",
        "agent_id": "datum",
        "customer_email": "u@example.com",
        "marketing_opt_in": False,
        "user_role": "observer",
    }

    response = api.post(URL, body, format="json")

    assert response.status_code == 201
    assert response.json()["description"] == ""
    assert response.json()["metadata"] == {}


def test_the_litellm_callback_charges_once_per_interaction(api, user):
    funded_account(user, uses=20, free_uses=0)
    body = {**user, "amount_minor": 1, "currency": "USD", "idempotency_key": "litellm:interaction-42"}

    statuses = [api.post(URL, body, format="json").status_code for _ in range(12)]

    assert statuses == [201] + [409] * 11
    assert balance(user) == (1999, 0)


def test_a_charge_creates_the_account_on_first_sight(api, user):
    response = api.post(URL, charge_body(user, "k"), format="json")

    assert response.status_code == 201
    assert balance(user) == (0, 2)


def test_every_charge_is_on_the_ledger_and_the_ledger_sums_to_the_balance(api, user):
    funded_account(user, uses=3)
    for i in range(5):
        api.post(URL, charge_body(user, f"k{i}"), format="json")

    account = Account.objects.get(external_id=user["external_id"])
    entries = LedgerEntry.objects.filter(account=account)
    assert sum(e.balance_delta_minor for e in entries) == account.balance_minor == 100
    assert sum(e.free_uses_delta for e in entries) == account.free_uses_remaining == 0
    assert account.total_uses == 5
    charges = entries.filter(kind=EntryKind.CHARGE)
    assert charges.count() == 5
    assert all(e.actor.startswith("api_key:") for e in charges)


INVALID = [
    ("amount zero", {"amount_minor": 0}),
    ("amount negative", {"amount_minor": -100}),
    ("amount a float", {"amount_minor": 1.5}),
    ("amount a string", {"amount_minor": "lots"}),
    ("amount a bool", {"amount_minor": True}),
    ("amount a numeric string", {"amount_minor": "100"}),
    ("amount a whole float", {"amount_minor": 100.0}),
    ("amount huge", {"amount_minor": 10**20}),
    ("unknown currency", {"currency": "EUR"}),
    ("currency not a string", {"currency": ["USD"]}),
    ("missing key", {"idempotency_key": None}),
    ("blank key", {"idempotency_key": ""}),
    ("oversized key", {"idempotency_key": "k" * 256}),
    ("oversized description", {"description": "d" * 1001}),
    ("metadata not an object", {"metadata": [1, 2]}),
    ("metadata with NUL", {"metadata": {"a": "x\u0000y"}}),
    ("external id an object", {"external_id": {"id": 1}}),
    ("external id blank", {"external_id": ""}),
    ("external id a number", {"external_id": 12345}),
    ("provider oversized", {"oauth_provider": "p" * 256}),
    ("description with NUL", {"description": "a\u0000b"}),
]


@pytest.mark.parametrize("name,change", INVALID, ids=[name for name, _ in INVALID])
def test_invalid_input_is_422_and_changes_nothing(api, user, name, change):
    body = charge_body(user, "k")
    for field, value in change.items():
        if value is None:
            del body[field]
        else:
            body[field] = value

    response = api.post(URL, body, format="json")

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"]
    assert Charge.objects.count() == 0


def test_a_check_costs_one_query_and_a_replay_no_more(api, user, django_assert_max_num_queries):
    funded_account(user, uses=5)
    api.post("/v1/billing/credits/check", user, format="json")  # caches the key
    api.post(URL, charge_body(user, "k"), format="json")

    with django_assert_max_num_queries(1):
        assert api.post("/v1/billing/credits/check", user, format="json").status_code == 200
    with django_assert_max_num_queries(1):
        assert api.post(URL, charge_body(user, "k"), format="json").status_code == 409

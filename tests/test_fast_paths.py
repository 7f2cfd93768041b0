"""The hot path's shortcuts answer exactly what the documented serializers and the ORM do."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.identity import Identity
from accounts.models import Account, AccountStatus
from accounts.selectors import account_for_identity, credit_status
from accounts.serializers import CreditCheckOut, credit_check_out
from accounts.services import account_set_status
from charges.models import Charge
from charges.selectors import charge_for_key
from charges.serializers import ChargeOut, charge_out
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db


def identity_of(user: dict) -> Identity:
    return Identity(oauth_provider=user["oauth_provider"], external_id=user["external_id"])


@pytest.mark.parametrize("state", ["free", "paid", "short", "empty", "suspended"])
def test_the_check_answer_matches_its_serializer(user, state):
    account = {
        "free": lambda: funded_account(user),
        "paid": lambda: funded_account(user, uses=5, free_uses=0),
        "short": lambda: funded_account(user, free_uses=0),
        "empty": lambda: funded_account(user, free_uses=0),
        "suspended": lambda: funded_account(user, uses=1),
    }[state]()
    if state == "suspended":
        account = account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, reason="t", actor="t")
    status = credit_status(account=account, amount_minor=50 if state == "short" else None)

    assert credit_check_out(status) == CreditCheckOut(status).data


def test_the_charge_answer_matches_its_serializer(api, user):
    api.post("/v1/billing/charges", charge_body(user, "k1", metadata={"a": [1, {"b": None}]}), format="json")
    charge = Charge.objects.get(idempotency_key="k1")

    assert charge_out(charge) == ChargeOut(charge).data
    loaded = charge_for_key(identity_of(user), "k1")
    assert charge_out(loaded) == ChargeOut(charge).data


def test_the_plain_sql_lookups_load_what_the_orm_loads(api, user):
    funded_account(user, uses=2)
    api.post("/v1/billing/charges", charge_body(user, "k1"), format="json")
    identity = identity_of(user)

    account = account_for_identity(identity)
    orm_account = Account.objects.get(external_id=user["external_id"])
    assert {f.attname: getattr(account, f.attname) for f in Account._meta.concrete_fields} == {
        f.attname: getattr(orm_account, f.attname) for f in Account._meta.concrete_fields
    }
    assert not account._state.adding
    charge = charge_for_key(identity, "k1")
    orm_charge = Charge.objects.get(idempotency_key="k1")
    assert {f.attname: getattr(charge, f.attname) for f in Charge._meta.concrete_fields} == {
        f.attname: getattr(orm_charge, f.attname) for f in Charge._meta.concrete_fields
    }
    assert account_for_identity(Identity(oauth_provider="oauth:google", external_id="nobody")) is None
    assert charge_for_key(identity, "unknown") is None


def test_a_credit_check_costs_one_query_and_a_charge_seven(api, user):
    funded_account(user, uses=5, free_uses=0)
    api.post("/v1/billing/credits/check", user, format="json")  # the key is cached from here on

    with CaptureQueriesContext(connection) as check:
        assert api.post("/v1/billing/credits/check", user, format="json").status_code == 200
    with CaptureQueriesContext(connection) as charge:
        assert api.post("/v1/billing/charges", charge_body(user, "k1"), format="json").status_code == 201
    with CaptureQueriesContext(connection) as replay:
        assert api.post("/v1/billing/charges", charge_body(user, "k1"), format="json").status_code == 409

    assert len(check.captured_queries) == 1
    # replay lookup, then (inside the test's transaction: savepoints instead of BEGIN/COMMIT)
    # lock, insert charge, update account, insert ledger entry.
    statements = [q["sql"].split()[0] for q in charge.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert statements == ["SELECT", "SELECT", "INSERT", "UPDATE", "INSERT"]
    assert len(replay.captured_queries) == 1


CHECK_INPUTS = [
    {"oauth_provider": "oauth:google", "external_id": "a@example.com"},
    {"oauth_provider": "oauth:google", "external_id": "a@example.com", "context": {"agent_id": "datum"}},
    {"oauth_provider": "oauth:google", "external_id": "ünïcode-名前", "wa_id": "wa-1", "tenant_id": "acme"},
    {"oauth_provider": "oauth:google", "external_id": "a", "wa_id": None, "tenant_id": "", "context": None},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": 1, "agent_id": "x", "user_role": "u"},
    {"oauth_provider": "oauth:google", "external_id": "a", "customer_email": "Me@Example.com "},
    {"oauth_provider": "oauth:google", "external_id": "a", "customer_email": "not an email"},
    {"oauth_provider": "oauth:google", "external_id": "a", "customer_email": None},
    {"oauth_provider": "oauth:google", "external_id": "a", "customer_email": "   "},
    {"oauth_provider": "oauth:google", "external_id": "a", "customer_email": 42},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": None, "marketing_opt_in": True},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": 10**12},
    # The rest the serializer must see (errors, trimming, coercion refused):
    {"oauth_provider": "oauth:google"},
    {"oauth_provider": "oauth:google", "external_id": ""},
    {"oauth_provider": "oauth:google", "external_id": " padded "},
    {"oauth_provider": "oauth:google", "external_id": "x" * 256},
    {"oauth_provider": "oauth:google", "external_id": "nul\x00"},
    {"oauth_provider": "oauth:google", "external_id": "lone \ud800 surrogate"},
    {"oauth_provider": "oauth:google", "external_id": 12345},
    {"oauth_provider": None, "external_id": "a"},
    {"oauth_provider": "oauth:google", "external_id": "a", "tenant_id": 7},
    {"oauth_provider": "oauth:google", "external_id": "a", "tenant_id": " t "},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": 0},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": "100"},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": 1.0},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": True},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": 10**12 + 1},
    ["not", "a", "dict"],
]


@pytest.mark.parametrize("body", CHECK_INPUTS)
def test_the_fast_check_validation_agrees_with_the_serializer(body):
    from accounts.serializers import CreditCheckIn, credit_check_in_fast

    fast = credit_check_in_fast(body)
    serializer = CreditCheckIn(data=body)
    if fast is not None:
        assert serializer.is_valid(), serializer.errors
        assert fast == dict(serializer.validated_data)
    else:
        # Declined: either the serializer refuses it, or it changes the value (trimming).
        assert not serializer.is_valid() or dict(serializer.validated_data) != {
            k: v for k, v in body.items() if k in serializer.fields
        }


_CHARGE = {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": 100, "idempotency_key": "k-1"}
CHARGE_INPUTS = [
    _CHARGE,
    {**_CHARGE, "currency": "USD", "description": "Agent interaction - datum", "metadata": {"a": [1, {"b": None}]}},
    {**_CHARGE, "currency": "usd", "description": "", "metadata": None, "wa_id": "w", "agent_id": "ignored"},
    {**_CHARGE, "description": None, "metadata": {}, "customer_email": "x@example.com"},
    {**_CHARGE, "amount_minor": 1, "idempotency_key": "litellm:abc123"},
    # For the serializer:
    {**_CHARGE, "amount_minor": 0},
    {**_CHARGE, "amount_minor": "100"},
    {**_CHARGE, "amount_minor": 100.0},
    {k: v for k, v in _CHARGE.items() if k != "amount_minor"},
    {k: v for k, v in _CHARGE.items() if k != "idempotency_key"},
    {**_CHARGE, "idempotency_key": ""},
    {**_CHARGE, "idempotency_key": " k "},
    {**_CHARGE, "currency": "EUR"},
    {**_CHARGE, "currency": None},
    {**_CHARGE, "currency": ""},
    {**_CHARGE, "description": "d" * 1001},
    {**_CHARGE, "description": " trimmed "},
    {**_CHARGE, "metadata": "a string"},
    {**_CHARGE, "metadata": {"deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}}},
    {**_CHARGE, "metadata": {"nul": "\x00"}},
    {**_CHARGE, "metadata": {"big": "x" * 20000}},
]


@pytest.mark.parametrize("body", CHARGE_INPUTS)
def test_the_fast_charge_validation_agrees_with_the_serializer(body):
    from charges.serializers import ChargeIn, charge_in_fast

    fast = charge_in_fast(body)
    serializer = ChargeIn(data=body)
    if fast is not None:
        assert serializer.is_valid(), serializer.errors
        assert fast == dict(serializer.validated_data)
    else:
        assert not serializer.is_valid() or dict(serializer.validated_data) != {
            k: v for k, v in body.items() if k in serializer.fields
        }

"""What the hot path costs in SQL statements: a check and a replay one each, a charge four.

Run outside a wrapping test transaction (transaction=True), so what is captured is what a
real request sends. A new charge is the one lookup that would have answered a replay, then
BEGIN, one statement (ledger.writes: the account's compare-and-set UPDATE, which takes the
row lock, with the INSERTs of the charge and its ledger entries), COMMIT: 4 statements
(6 with the UPDATE and the INSERTs apart; 7 before that, with a separate replay lookup and
a SELECT ... FOR UPDATE).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.identity import Identity
from accounts.models import Account
from charges.models import Charge
from charges.selectors import account_or_charge_for_key
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db(transaction=True)


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0] for q in captured.captured_queries]


@pytest.fixture
def warm(api, user):
    """A funded account, and the API key already in the process's cache."""
    funded_account(user, uses=5, free_uses=0)
    api.post("/v1/billing/credits/check", user, format="json")
    return user


def test_a_credit_check_is_one_statement(api, warm):
    with CaptureQueriesContext(connection) as check:
        assert api.post("/v1/billing/credits/check", warm, format="json").status_code == 200

    assert statements(check) == ["SELECT"]


def test_a_new_charge_is_the_lookup_then_one_statement_that_updates_and_inserts(api, warm):
    with CaptureQueriesContext(connection) as charge:
        assert api.post("/v1/billing/charges", charge_body(warm, "k1"), format="json").status_code == 201

    assert statements(charge) == ["SELECT", "BEGIN", "WITH", "COMMIT"]
    assert "FOR UPDATE" not in charge.captured_queries[0]["sql"]
    write = charge.captured_queries[2]["sql"]
    assert "UPDATE" in write and 'INSERT INTO "charges_charge"' in write and 'INSERT INTO "ledger_ledgerentry"' in write


def test_a_replay_is_one_indexed_lookup_and_nothing_else(api, warm):
    api.post("/v1/billing/charges", charge_body(warm, "k1"), format="json")

    with CaptureQueriesContext(connection) as replay:
        assert api.post("/v1/billing/charges", charge_body(warm, "k1"), format="json").status_code == 409

    assert statements(replay) == ["SELECT"]


def test_the_first_charge_of_a_day_tops_up_in_the_same_statements(api, warm, settings):
    settings.BILLING_DAILY_FREE_USES = 2

    with CaptureQueriesContext(connection) as charge:
        assert api.post("/v1/billing/charges", charge_body(warm, "k1"), format="json").status_code == 201

    # The top-up and the charge are one UPDATE and one INSERT of both ledger entries, in one statement.
    assert statements(charge) == ["SELECT", "BEGIN", "WITH", "COMMIT"]


def test_the_replay_lookup_loads_what_the_orm_loads(api, warm):
    api.post("/v1/billing/charges", charge_body(warm, "k1", metadata={"a": [1, {"b": None}]}), format="json")
    identity = Identity(oauth_provider=warm["oauth_provider"], external_id=warm["external_id"])

    no_account, charge = account_or_charge_for_key(identity=identity, idempotency_key="k1")
    account, no_charge = account_or_charge_for_key(identity=identity, idempotency_key="unknown")

    orm_account = Account.objects.get(external_id=warm["external_id"])
    orm_charge = Charge.objects.get(idempotency_key="k1")
    charge_fields = [f.attname for f in Charge._meta.concrete_fields]
    account_fields = [f.attname for f in Account._meta.concrete_fields]
    assert no_account is None and no_charge is None
    assert {f: getattr(charge, f) for f in charge_fields} == {f: getattr(orm_charge, f) for f in charge_fields}
    assert {f: getattr(account, f) for f in account_fields} == {f: getattr(orm_account, f) for f in account_fields}
    assert account_or_charge_for_key(
        identity=Identity(oauth_provider="oauth:google", external_id="nobody"), idempotency_key="k1"
    ) == (
        None,
        None,
    )

"""What the hot path costs in SQL statements: a check and a replay one read each, a charge seven.

Run outside a wrapping test transaction (transaction=True), so what is captured is what a
real request sends. A new charge is the replay lookup (which finds nothing), then BEGIN,
the account locked and read (SELECT ... FOR UPDATE), the charge INSERT, the account
UPDATE, one INSERT of its ledger entries, COMMIT.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db(transaction=True)

NEW_CHARGE = ["SELECT", "BEGIN", "SELECT", "INSERT", "UPDATE", "INSERT", "COMMIT"]


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


def test_a_new_charge_looks_up_the_key_then_locks_reads_and_writes(api, warm):
    with CaptureQueriesContext(connection) as charge:
        assert api.post("/v1/billing/charges", charge_body(warm, "k1"), format="json").status_code == 201

    assert statements(charge) == NEW_CHARGE
    sql = [q["sql"] for q in charge.captured_queries]
    assert "FOR UPDATE" not in sql[0] and sql[2].endswith("FOR UPDATE")
    assert 'INSERT INTO "charges_charge"' in sql[3] and 'INSERT INTO "ledger_ledgerentry"' in sql[5]


def test_a_replay_is_one_indexed_lookup_and_nothing_else(api, warm):
    api.post("/v1/billing/charges", charge_body(warm, "k1"), format="json")

    with CaptureQueriesContext(connection) as replay:
        assert api.post("/v1/billing/charges", charge_body(warm, "k1"), format="json").status_code == 409

    assert statements(replay) == ["SELECT"]
    assert "FOR UPDATE" not in replay.captured_queries[0]["sql"]


def test_the_first_charge_of_a_day_tops_up_in_the_same_statements(api, warm, settings):
    settings.BILLING_DAILY_FREE_USES = 2

    with CaptureQueriesContext(connection) as charge:
        assert api.post("/v1/billing/charges", charge_body(warm, "k1"), format="json").status_code == 201

    # The top-up and the charge share the account UPDATE and one INSERT of both ledger entries.
    assert statements(charge) == NEW_CHARGE
    assert charge.captured_queries[5]["sql"].count("daily_free_uses_granted") == 1


def test_the_written_out_lookups_load_what_the_orm_loads(api, warm):
    from accounts.identity import Identity
    from accounts.models import Account
    from accounts.selectors import account_for_identity
    from charges.models import Charge
    from charges.selectors import charge_for_key

    api.post("/v1/billing/charges", charge_body(warm, "k1", metadata={"a": [1, {"b": None}]}), format="json")
    identity = Identity(oauth_provider=warm["oauth_provider"], external_id=warm["external_id"])
    nobody = Identity(oauth_provider="oauth:google", external_id="nobody")

    charge, account = charge_for_key(identity=identity, idempotency_key="k1"), account_for_identity(identity=identity)

    orm_charge, orm_account = Charge.objects.get(idempotency_key="k1"), Account.objects.get(pk=account.pk)
    assert {f.attname: getattr(charge, f.attname) for f in Charge._meta.concrete_fields} == {
        f.attname: getattr(orm_charge, f.attname) for f in Charge._meta.concrete_fields
    }
    assert {f.attname: getattr(account, f.attname) for f in Account._meta.concrete_fields} == {
        f.attname: getattr(orm_account, f.attname) for f in Account._meta.concrete_fields
    }
    assert charge.metadata == {"a": [1, {"b": None}]}
    assert charge_for_key(identity=identity, idempotency_key="unknown") is None
    assert charge_for_key(identity=nobody, idempotency_key="k1") is None
    assert account_for_identity(identity=nobody) is None
    other_tenant = Identity(oauth_provider=warm["oauth_provider"], external_id=warm["external_id"], tenant_id="t2")
    assert account_for_identity(identity=other_tenant) is None
    assert charge_for_key(identity=other_tenant, idempotency_key="k1") is None

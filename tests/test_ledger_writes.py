"""The charge's one statement (ledger.writes) stores what the ORM would, and nothing when stale."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from accounts.models import Account, AccountStatus
from charges.models import Charge
from ledger.models import EntryKind, LedgerEntry
from ledger.services import Movement, StaleAccount, ledger_post_many
from tests.factories import funded_account

pytestmark = pytest.mark.django_db


def a_charge(account: Account, *, metadata: dict | None = None) -> Charge:
    return Charge(
        id=uuid.uuid4(),
        account=account,
        idempotency_key="k1",
        amount_minor=100,
        currency="USD",
        description="Agent interaction \u00e9 ' \" %s",
        metadata=metadata if metadata is not None else {"a": [1, {"b": None}], "c": "50%"},
        paid_with_free_use=False,
        debited_minor=100,
        balance_after_minor=account.balance_minor - 100,
        free_uses_after=account.free_uses_remaining,
        actor="api_key:test",
    )


def charge_movements(charge: Charge) -> list[Movement]:
    return [
        Movement(kind=EntryKind.DAILY_FREE_USES_GRANTED, daily_free_uses_delta=2, reason="day", details={"x": 1}),
        Movement(kind=EntryKind.CHARGE, balance_delta_minor=-100, uses_delta=1, charge_id=charge.id, reason="use"),
    ]


def test_a_charge_with_its_entries_reads_back_as_written(user):
    account = funded_account(user, uses=2, free_uses=0)
    charge = a_charge(account)

    with transaction.atomic():
        entries = ledger_post_many(
            account=account, actor="api_key:test", movements=charge_movements(charge), companion=charge
        )

    stored = Charge.objects.get(pk=charge.pk)
    fields = [f.attname for f in Charge._meta.concrete_fields]
    assert {f: getattr(stored, f) for f in fields} == {f: getattr(charge, f) for f in fields}
    assert stored.created_at is not None
    charged, top_up = LedgerEntry.objects.filter(account=account).order_by("-id")[:2]
    assert [e.pk for e in entries] == [top_up.pk, charged.pk]  # ids in the order posted
    assert (top_up.kind, top_up.daily_free_uses_after, top_up.details) == ("daily_free_uses_granted", 2, {"x": 1})
    assert (charged.charge_id, charged.balance_delta_minor, charged.balance_after_minor) == (charge.pk, -100, 100)
    assert charged.purchase_id is None and charged.idempotency_key is None
    account.refresh_from_db()
    assert (account.balance_minor, account.daily_free_uses_remaining, account.total_uses) == (100, 2, 1)


def test_a_stale_account_writes_no_row_at_all(user):
    stale = funded_account(user, uses=2, free_uses=0)
    funded_account(user, uses=1)  # the balance moved on since `stale` was read
    charge = a_charge(stale)

    with pytest.raises(StaleAccount), transaction.atomic():
        ledger_post_many(
            account=stale,
            actor="api_key:test",
            movements=charge_movements(charge),
            companion=charge,
            expected_status=AccountStatus.ACTIVE,
        )

    assert not Charge.objects.exists()
    assert not LedgerEntry.objects.filter(kind__in=["charge", "daily_free_uses_granted"]).exists()
    assert Account.objects.get(pk=stale.pk).balance_minor == 300


@pytest.mark.parametrize("vendor", ["postgresql", "other"])
def test_other_databases_write_the_same_rows_through_the_orm(user, monkeypatch, vendor):
    from django.db import connection

    if vendor == "other":
        monkeypatch.setattr(connection, "vendor", "sqlite")  # make run's SQLite takes the ORM path
    account = funded_account(user, uses=2, free_uses=0)
    charge = a_charge(account, metadata={"k": "v"})

    with transaction.atomic():
        ledger_post_many(account=account, actor="api_key:test", movements=charge_movements(charge), companion=charge)

    stored = Charge.objects.get(pk=charge.pk)
    assert (stored.metadata, stored.balance_after_minor, stored.description) == ({"k": "v"}, 100, charge.description)
    charged, top_up = LedgerEntry.objects.filter(account=account).order_by("-id")[:2]
    assert (top_up.kind, charged.kind, charged.charge_id) == ("daily_free_uses_granted", "charge", charge.pk)

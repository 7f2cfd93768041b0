"""The ledger is append-only and always sums to the balances."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from ledger.services import LedgerInvariantError, Movement, ledger_post, ledger_post_many
from tests.factories import funded_account

pytestmark = pytest.mark.django_db


def test_an_entry_cannot_be_changed_or_deleted(user):
    account = funded_account(user, uses=1)
    entry = LedgerEntry.objects.filter(account=account).first()

    entry.reason = "rewritten"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()


@pytest.mark.django_db(transaction=True)
def test_posting_outside_a_transaction_is_refused(user):
    account = funded_account(user)

    with pytest.raises(LedgerInvariantError):
        ledger_post(account=account, kind=EntryKind.GRANT, actor="test", balance_delta_minor=100)


def test_a_movement_below_zero_is_refused_before_it_reaches_the_database(user):
    account = funded_account(user, uses=1)

    with pytest.raises(LedgerInvariantError), transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        ledger_post(account=locked, kind=EntryKind.ADJUSTMENT, actor="test", balance_delta_minor=-101)


def test_the_database_refuses_a_negative_balance_even_without_the_service(user):
    account = funded_account(user)

    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=account.pk).update(balance_minor=-1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=account.pk).update(free_uses_remaining=-1)


def test_a_stale_account_object_cannot_overwrite_a_newer_balance(user):
    stale = funded_account(user, uses=1)
    funded_account(user, uses=1)  # the balance moved on since `stale` was read

    with pytest.raises(LedgerInvariantError), transaction.atomic():
        ledger_post(account=stale, kind=EntryKind.GRANT, actor="test", balance_delta_minor=100)
    stale.refresh_from_db()
    assert stale.balance_minor == 200


def test_a_top_up_and_a_use_post_in_order_with_the_counts_each_left(user):
    account = funded_account(user, uses=2, free_uses=0)
    movements = [
        Movement(kind=EntryKind.DAILY_FREE_USES_GRANTED, daily_free_uses_delta=2, reason="day"),
        Movement(kind=EntryKind.CHARGE, daily_free_uses_delta=-1, uses_delta=1, reason="use"),
        Movement(kind=EntryKind.CHARGE, balance_delta_minor=-100, uses_delta=1, reason="use"),
    ]

    with transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        entries = ledger_post_many(account=locked, actor="test", movements=movements)

    stored = list(LedgerEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("id"))
    assert [e.pk for e in entries] == [e.pk for e in stored]
    assert [(e.kind, e.balance_after_minor, e.daily_free_uses_after) for e in stored] == [
        ("daily_free_uses_granted", 200, 2),
        ("charge", 200, 1),
        ("charge", 100, 1),
    ]
    account.refresh_from_db()
    assert (account.balance_minor, account.daily_free_uses_remaining, account.total_uses) == (100, 1, 2)
    assert (locked.balance_minor, locked.daily_free_uses_remaining, locked.total_uses) == (100, 1, 2)


def test_a_movement_that_fails_midway_writes_nothing(user):
    account = funded_account(user, uses=1, free_uses=0)
    movements = [
        Movement(kind=EntryKind.GRANT, balance_delta_minor=50),
        Movement(kind=EntryKind.ADJUSTMENT, balance_delta_minor=-200),
    ]
    entries_before = LedgerEntry.objects.filter(account=account).count()

    with pytest.raises(LedgerInvariantError), transaction.atomic():
        locked = Account.objects.select_for_update().get(pk=account.pk)
        ledger_post_many(account=locked, actor="test", movements=movements)

    account.refresh_from_db()
    assert account.balance_minor == 100
    assert LedgerEntry.objects.filter(account=account).count() == entries_before

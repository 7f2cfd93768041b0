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


def test_a_movement_expecting_another_status_is_refused(user):
    from accounts.models import AccountStatus
    from accounts.services import account_set_status
    from ledger.services import StaleAccount

    read = funded_account(user, uses=1)
    account_set_status(account_id=read.pk, status=AccountStatus.SUSPENDED, reason="abuse", actor="test")
    # `read` still says active; its counts are current (a status change moves none).

    with pytest.raises(StaleAccount), transaction.atomic():
        ledger_post_many(
            account=read,
            actor="test",
            movements=[Movement(kind=EntryKind.CHARGE, balance_delta_minor=-100, uses_delta=1)],
            expected_status=AccountStatus.ACTIVE,
        )
    read.refresh_from_db()
    assert read.balance_minor == 100

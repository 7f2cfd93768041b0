"""manage.py suspend_account / reactivate_account / close_account."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from accounts.models import Account, AccountStatus
from ledger.models import EntryKind, LedgerEntry
from tests.conftest import charge_body, run_command
from tests.factories import funded_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(user) -> Account:
    return funded_account({**user, "tenant_id": "acme"})


def args_for(account: Account, reason: str = "Fraud review") -> list[str]:
    return [
        "--provider",
        account.oauth_provider,
        "--external-id",
        account.external_id,
        "--tenant",
        account.tenant_id,
        "--reason",
        reason,
    ]


def test_suspending_blocks_charges_and_writes_a_status_change(account, api, user):
    out, _ = run_command("suspend_account", *args_for(account))

    account.refresh_from_db()
    assert account.status == AccountStatus.SUSPENDED
    entry = LedgerEntry.objects.filter(account=account).first()
    assert (entry.kind, entry.actor, entry.reason) == (
        EntryKind.STATUS_CHANGE,
        "command:suspend_account",
        "Fraud review",
    )
    assert "now suspended" in out
    response = api.post("/v1/billing/charges", charge_body({**user, "tenant_id": "acme"}, "k"), format="json")
    assert response.status_code == 403


def test_reactivating_lets_the_account_charge_again(account, api, user):
    run_command("suspend_account", *args_for(account))
    run_command("reactivate_account", *args_for(account, "Cleared"))

    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE
    assert LedgerEntry.objects.filter(account=account).first().actor == "command:reactivate_account"
    response = api.post("/v1/billing/charges", charge_body({**user, "tenant_id": "acme"}, "k"), format="json")
    assert response.status_code == 201


def test_a_closed_account_cannot_be_reactivated(account):
    run_command("close_account", *args_for(account, "User asked"))

    with pytest.raises(CommandError, match="cannot become active"):
        run_command("reactivate_account", *args_for(account))


def test_suspending_twice_is_an_error_and_writes_nothing_more(account):
    run_command("suspend_account", *args_for(account))
    count = LedgerEntry.objects.filter(account=account).count()

    with pytest.raises(CommandError, match="already suspended"):
        run_command("suspend_account", *args_for(account))

    assert LedgerEntry.objects.filter(account=account).count() == count


def test_an_unknown_account_is_an_error(account):
    with pytest.raises(CommandError, match="No account"):
        run_command("suspend_account", "--provider", "oauth:google", "--external-id", "ghost", "--reason", "r")
    with pytest.raises(CommandError, match="No account"):  # the same user in another tenant
        run_command(
            "suspend_account", "--provider", "oauth:google", "--external-id", account.external_id, "--reason", "r"
        )


@pytest.mark.parametrize("command", ["suspend_account", "reactivate_account", "close_account"])
def test_a_reason_is_required(account, command):
    with pytest.raises(CommandError):
        run_command(command, "--provider", account.oauth_provider, "--external-id", account.external_id)
    with pytest.raises(CommandError, match="--reason must not be empty"):
        run_command(command, *args_for(account, " "))


def test_a_dry_run_changes_nothing(account):
    out, _ = run_command("suspend_account", *args_for(account), "--dry-run")

    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE
    assert "Dry run" in out


@pytest.mark.parametrize("command", ["suspend_account", "reactivate_account", "close_account"])
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--reason", "r" * 501, "--reason must be at most 500 characters"),
        ("--reason", "fraud\x00", "--reason"),
        ("--external-id", "x" * 256, "--external-id must be at most 255 characters"),
        ("--tenant", "ac\x00me", "--tenant"),
    ],
)
def test_unstorable_input_fails_clearly_and_changes_nothing(account, command, option, value, message):
    args = args_for(account)
    args[args.index(option) + 1] = value

    with pytest.raises(CommandError, match=message):
        run_command(command, *args)

    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE
    assert not LedgerEntry.objects.filter(account=account, kind=EntryKind.STATUS_CHANGE).exists()


def test_record_ledger_drift_refuses_an_unstorable_reason(account):
    from django.db.models import F

    Account.objects.filter(pk=account.pk).update(balance_minor=F("balance_minor") + 5)

    with pytest.raises(CommandError, match="--reason"):
        run_command("record_ledger_drift", "--account-id", str(account.pk), "--reason", "sql\x00fix")

    assert not LedgerEntry.objects.filter(account=account, kind=EntryKind.ADJUSTMENT).exists()

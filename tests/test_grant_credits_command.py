"""manage.py grant_credits: paid uses, minor units or free uses, on the ledger, safe to re-run."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management.base import CommandError

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from tests.conftest import run_command
from tests.factories import funded_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(user) -> Account:
    return funded_account(user)


def identity_args(account: Account) -> list[str]:
    args = ["--provider", account.oauth_provider, "--external-id", account.external_id]
    return args + (["--tenant", account.tenant_id] if account.tenant_id else [])


def test_granting_uses_adds_credit_with_the_command_as_actor(account):
    out, _ = run_command("grant_credits", *identity_args(account), "--uses", "5", "--reason", "Support ticket 12")

    account.refresh_from_db()
    assert account.balance_minor == 500
    assert account.plan_name == "pro"
    entry = LedgerEntry.objects.filter(account=account).first()
    assert (entry.kind, entry.balance_delta_minor, entry.actor, entry.reason) == (
        EntryKind.GRANT,
        500,
        "command:grant_credits",
        "Support ticket 12",
    )
    assert f"ledger entry #{entry.pk}" in out


def test_granting_minor_units_and_free_uses(account):
    run_command("grant_credits", *identity_args(account), "--amount-minor", "250", "--reason", "r")
    run_command("grant_credits", *identity_args(account), "--free-uses", "2", "--reason", "r")

    account.refresh_from_db()
    assert (account.balance_minor, account.free_uses_remaining) == (250, 5)


def test_a_rerun_with_the_same_key_grants_nothing(account):
    args = [*identity_args(account), "--uses", "5", "--reason", "r", "--idempotency-key", "ticket-12"]

    run_command("grant_credits", *args)
    out, _ = run_command("grant_credits", *args)

    account.refresh_from_db()
    assert account.balance_minor == 500
    assert "Already granted" in out


def test_the_same_key_with_another_amount_fails(account):
    run_command("grant_credits", *identity_args(account), "--uses", "5", "--reason", "r", "--idempotency-key", "k")

    with pytest.raises(CommandError, match="different parameters"):
        run_command("grant_credits", *identity_args(account), "--uses", "6", "--reason", "r", "--idempotency-key", "k")


def test_tenants_are_kept_apart(user):
    tenant_account = funded_account({**user, "tenant_id": "acme"})
    plain = funded_account(user)

    run_command("grant_credits", *identity_args(tenant_account), "--uses", "1", "--reason", "r")

    tenant_account.refresh_from_db()
    plain.refresh_from_db()
    assert (tenant_account.balance_minor, plain.balance_minor) == (100, 0)


def test_an_unknown_account_is_refused_unless_asked_to_create_it(db):
    args = ["--provider", "oauth:google", "--external-id", "new@example.com", "--uses", "1", "--reason", "promo"]

    with pytest.raises(CommandError, match="No account"):
        run_command("grant_credits", *args)
    run_command("grant_credits", *args, "--create")

    account = Account.objects.get(external_id="new@example.com")
    assert (account.balance_minor, account.free_uses_remaining) == (100, 3)


def test_an_adjustment_may_be_negative_but_a_grant_may_not(account):
    run_command("grant_credits", *identity_args(account), "--uses", "3", "--reason", "r")

    with pytest.raises(CommandError, match="adjustment"):
        run_command("grant_credits", *identity_args(account), "--uses", "-1", "--reason", "r")
    run_command("grant_credits", *identity_args(account), "--uses", "-1", "--kind", "adjustment", "--reason", "fix")
    with pytest.raises(CommandError, match="below zero"):
        run_command("grant_credits", *identity_args(account), "--uses", "-9", "--kind", "adjustment", "--reason", "x")

    account.refresh_from_db()
    assert account.balance_minor == 200


def test_a_dry_run_changes_nothing(account):
    out, _ = run_command("grant_credits", *identity_args(account), "--uses", "5", "--reason", "r", "--dry-run")

    account.refresh_from_db()
    assert account.balance_minor == 0
    assert "Dry run" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uses", "5"], "--reason"),
        (["--reason", "r"], "one of the arguments"),
        (["--uses", "5", "--amount-minor", "5", "--reason", "r"], "not allowed with"),
        (["--uses", "five", "--reason", "r"], "invalid int value"),
        (["--uses", "0", "--reason", "r"], "must not be zero"),
        (["--uses", "1", "--reason", "   "], "--reason must not be empty"),
        (["--uses", "1", "--reason", "r", "--kind", "gift"], "invalid choice"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(account, args, message):
    with pytest.raises(CommandError, match=message):
        run_command("grant_credits", *identity_args(account), *args)

    account.refresh_from_db()
    assert account.balance_minor == 0


def test_help_and_the_exit_status_of_a_failure():
    help_text = subprocess.run(
        [sys.executable, "manage.py", "grant_credits", "--help"], capture_output=True, text=True, check=True
    ).stdout
    failure = subprocess.run(
        [sys.executable, "manage.py", "grant_credits", "--provider", "p", "--external-id", "x", "--reason", "r"],
        capture_output=True,
        text=True,
    )

    assert "--idempotency-key" in help_text and "Safe to re-run" in help_text
    assert failure.returncode != 0
    assert "one of the arguments --uses --amount-minor --free-uses is required" in failure.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--external-id", "x" * 256], "--external-id must be at most 255 characters"),
        (["--external-id", "ada\x00@example.com"], "--external-id must be .*without NUL"),
        (["--provider", "oauth:" + "g" * 250, "--external-id", "ada@example.com"], "--provider must be at most 255"),
        (["--external-id", "ada@example.com", "--tenant", "t" * 256], "--tenant must be at most 255"),
        (["--external-id", "ada@example.com", "--tenant", "ac\x00me"], "--tenant"),
        (["--external-id", "ada@example.com", "--idempotency-key", "k" * 256], "--idempotency-key must be at most 255"),
        (["--external-id", "ada@example.com", "--idempotency-key", "  "], "--idempotency-key must not be empty"),
        (["--external-id", "ada@example.com", "--idempotency-key", "k\x00"], "--idempotency-key"),
        (["--external-id", "ada@example.com", "--reason", "r\x00"], "--reason"),
        (["--external-id", "ada@example.com", "--uses", str(10**17)], "larger than any balance"),
    ],
)
def test_unstorable_identity_key_or_reason_fails_clearly_and_creates_nothing(db, args, message):
    base = {"--provider": "oauth:google", "--reason": "promo"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    options = [item for name, value in {**base, **given}.items() for item in (name, value)]

    with pytest.raises(CommandError, match=message):
        run_command("grant_credits", *options, *([] if "--uses" in given else ["--uses", "1"]), "--create")

    assert not Account.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_a_closed_account_gets_no_grant_but_an_adjustment(account):
    from accounts.models import AccountStatus
    from accounts.services import account_set_status

    run_command("grant_credits", *identity_args(account), "--uses", "2", "--reason", "r", "--idempotency-key", "k1")
    account_set_status(account_id=account.pk, status=AccountStatus.CLOSED, reason="left", actor="test")

    with pytest.raises(CommandError, match="closed"):
        run_command("grant_credits", *identity_args(account), "--free-uses", "2", "--reason", "r")
    replay, _ = run_command(
        "grant_credits", *identity_args(account), "--uses", "2", "--reason", "r", "--idempotency-key", "k1"
    )
    run_command("grant_credits", *identity_args(account), "--uses", "-2", "--kind", "adjustment", "--reason", "refund")

    assert "Already granted" in replay
    account.refresh_from_db()
    assert (account.balance_minor, account.free_uses_remaining) == (0, 3)

"""manage.py import_accounts: users from Unlimit become accounts with a migration credit, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management.base import CommandError

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from tests.conftest import run_command
from tests.factories import funded_account

pytestmark = pytest.mark.django_db


def csv_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "unlimit.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_each_row_becomes_an_account_with_its_remaining_uses(tmp_path):
    path = csv_file(tmp_path, "email,remaining credits\nAda@Example.com,12\nbob@example.com,0\n")

    out, _ = run_command("import_accounts", path)

    ada = Account.objects.get(oauth_provider="oauth:google", external_id="ada@example.com")
    assert (ada.balance_minor, ada.credits_remaining, ada.free_uses_remaining, ada.plan_name) == (1200, 12, 3, "pro")
    assert ada.email == "ada@example.com"
    entry = LedgerEntry.objects.get(account=ada, kind=EntryKind.MIGRATION)
    assert (entry.balance_delta_minor, entry.actor, entry.idempotency_key) == (
        1200,
        "command:import_accounts",
        "migration:unlimit:ada@example.com",
    )
    bob = Account.objects.get(external_id="bob@example.com")
    assert (bob.balance_minor, bob.plan_name) == (0, "free")
    assert "2 created, 0 existing accounts credited, 0 skipped (already imported), 0 rejected" in out


def test_a_rerun_skips_every_row(tmp_path):
    path = csv_file(tmp_path, "email,remaining_credits\nada@example.com,12\nbob@example.com,0\n")
    run_command("import_accounts", path)

    out, _ = run_command("import_accounts", path, "-v", "2")

    assert "0 created, 0 existing accounts credited, 2 skipped" in out
    assert "line 2: skipped ada@example.com" in out
    assert Account.objects.get(external_id="ada@example.com").balance_minor == 1200
    assert LedgerEntry.objects.filter(kind=EntryKind.MIGRATION).count() == 1


def test_a_user_already_seen_through_an_agent_is_credited_and_keeps_what_they_had(tmp_path):
    existing = funded_account({"oauth_provider": "oauth:google", "external_id": "ada@example.com"}, uses=1)
    path = csv_file(tmp_path, "email,credits\nada@example.com,5\n")

    out, _ = run_command("import_accounts", path)

    existing.refresh_from_db()
    assert (existing.balance_minor, existing.free_uses_remaining) == (600, 3)
    assert "1 existing accounts credited" in out


def test_bad_rows_are_rejected_with_their_line_numbers_and_the_rest_imported(tmp_path):
    path = csv_file(
        tmp_path,
        "email,remaining credits,provider,tenant\n"
        "good@example.com,3,,\n"
        "not-an-email,3,,\n"
        "neg@example.com,-1,,\n"
        "\n"
        "frac@example.com,2.5,,\n"
        "prov@example.com,1,google,\n"
        "gh@example.com,4,oauth:github,acme\n",
    )

    with pytest.raises(CommandError, match="4 rows rejected") as failure:
        run_command("import_accounts", path)

    assert failure.value.returncode == 1
    assert Account.objects.filter(external_id="good@example.com").exists()
    gh = Account.objects.get(oauth_provider="oauth:github", external_id="gh@example.com", tenant_id="acme")
    assert gh.balance_minor == 400
    assert not Account.objects.filter(external_id__in=["neg@example.com", "frac@example.com"]).exists()


def test_the_rejection_report_names_each_bad_line(tmp_path, capsys):
    from io import StringIO

    from django.core.management import call_command

    path = csv_file(tmp_path, "email,credits\nok@example.com,1\nnope,1\nx@example.com,lots\n")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_accounts", path, stdout=StringIO(), stderr=err)

    assert "line 3: rejected: invalid email 'nope'" in err.getvalue()
    assert "line 4: rejected: remaining credits must be a whole number of uses, got 'lots'" in err.getvalue()


def test_the_same_email_with_another_amount_is_rejected_not_credited_twice(tmp_path):
    run_command("import_accounts", csv_file(tmp_path, "email,credits\nada@example.com,12\n"))

    with pytest.raises(CommandError, match="1 rows rejected"):
        run_command("import_accounts", csv_file(tmp_path, "email,credits\nada@example.com,15\n"))

    assert Account.objects.get(external_id="ada@example.com").balance_minor == 1200


def test_a_file_without_a_header_is_read_as_email_then_credits(tmp_path):
    run_command("import_accounts", csv_file(tmp_path, "ada@example.com,2\nbob@example.com,1\n"))

    assert Account.objects.get(external_id="ada@example.com").balance_minor == 200
    assert Account.objects.get(external_id="bob@example.com").balance_minor == 100


def test_defaults_for_provider_and_tenant_can_be_set(tmp_path):
    run_command("import_accounts", csv_file(tmp_path, "email,credits\nada@example.com,2\n"), "--tenant", "acme")

    assert Account.objects.get(external_id="ada@example.com").tenant_id == "acme"


def test_a_dry_run_reports_and_changes_nothing(tmp_path):
    out, _ = run_command("import_accounts", csv_file(tmp_path, "email,credits\nada@example.com,2\n"), "--dry-run")

    assert "Dry run (nothing changed): 1 created" in out
    assert not Account.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("name,credits\nada,1\n", "header"),
        ("email,name\nada@example.com,x\n", "remaining credits column"),
    ],
)
def test_an_unreadable_file_fails_as_a_whole(tmp_path, text, message):
    with pytest.raises(CommandError, match=message):
        run_command("import_accounts", csv_file(tmp_path, text))


def test_a_missing_file_and_a_bad_provider_fail(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run_command("import_accounts", str(tmp_path / "missing.csv"))
    with pytest.raises(CommandError, match="--provider"):
        run_command("import_accounts", csv_file(tmp_path, "email,credits\n"), "--provider", "google")


LONG_EMAIL = "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "com"  # 312 characters; validate_email accepts it


def test_rows_the_database_cannot_store_are_rejected_and_the_rest_imported(tmp_path, capsys):
    from io import StringIO

    from django.core.management import call_command

    assert len(LONG_EMAIL) == 312
    path = csv_file(
        tmp_path,
        "email,credits,provider,tenant\n"
        "first@example.com,1,,\n"
        f"{LONG_EMAIL},1,,\n"
        "nul@example.com,1,,ac\x00me\n"
        f"tenant@example.com,1,,{'t' * 256}\n"
        f"prov@example.com,1,oauth:{'g' * 250},\n"
        "last@example.com,2,,\n",
    )
    err = StringIO()

    with pytest.raises(CommandError, match="4 rows rejected") as failure:
        call_command("import_accounts", path, stdout=StringIO(), stderr=err)

    assert failure.value.returncode == 1
    report = err.getvalue()
    assert "line 3: rejected: email is too long (312 characters" in report
    assert "line 4: rejected: tenant" in report and "NUL" in report
    assert "line 5: rejected: tenant is too long (256 characters" in report
    assert "line 6: rejected: provider is too long" in report
    assert Account.objects.get(external_id="first@example.com").balance_minor == 100
    assert Account.objects.get(external_id="last@example.com").balance_minor == 200  # read past the bad rows
    assert Account.objects.count() == 2


def test_an_email_too_long_for_its_migration_key_is_rejected(tmp_path):
    email = "a" * 60 + "@" + ("b" * 60 + ".") * 2 + "c" * 60 + ".com"  # fits the column, not the key
    assert 237 < len(email) <= 254

    with pytest.raises(CommandError, match="1 rows rejected"):
        run_command("import_accounts", csv_file(tmp_path, f"email,credits\n{email},1\nok@example.com,1\n"))

    assert list(Account.objects.values_list("external_id", flat=True)) == ["ok@example.com"]


def test_a_database_error_on_one_row_rejects_that_row_only(tmp_path, monkeypatch):
    from django.db import DataError

    from backoffice import migration

    real_grant = migration.credits_grant

    def grant(**kwargs):
        if kwargs["identity"].external_id == "bad@example.com":
            raise DataError("value too long for type character varying(255)")
        return real_grant(**kwargs)

    monkeypatch.setattr(migration, "credits_grant", grant)
    path = csv_file(tmp_path, "email,credits\nok@example.com,1\nbad@example.com,1\nlater@example.com,1\n")

    with pytest.raises(CommandError, match="1 rows rejected"):
        run_command("import_accounts", path)

    assert set(Account.objects.values_list("external_id", flat=True)) == {"ok@example.com", "later@example.com"}


@pytest.mark.parametrize(
    ("args", "message"), [(["--tenant", "t" * 256], "--tenant"), (["--provider", "oauth:\x00g"], "--provider")]
)
def test_bad_defaults_for_provider_and_tenant_fail(tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        run_command("import_accounts", csv_file(tmp_path, "email,credits\nada@example.com,1\n"), *args)

    assert not Account.objects.exists()

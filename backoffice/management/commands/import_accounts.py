"""manage.py import_accounts FILE.csv [--provider oauth:google] [--tenant T] [--dry-run]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from backoffice import migration
from backoffice.commands import IDENTITY_MAX_LENGTH, BackofficeCommand, checked_text


class Command(BackofficeCommand):
    help = (
        "Import users from the old provider (Unlimit). CSV columns: email, remaining credits (uses), and "
        "optionally provider and tenant; a header line names them. Each email becomes the account "
        "(provider, email) with a `migration` ledger entry of its remaining uses; new accounts also get the "
        "standard free uses. Safe to re-run: rows already imported are skipped. Bad rows are reported with "
        "their line numbers and the command exits 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The CSV export (UTF-8).")
        parser.add_argument(
            "--provider",
            default=migration.DEFAULT_PROVIDER,
            help=f"OAuth provider for rows that name none (default {migration.DEFAULT_PROVIDER}).",
        )
        parser.add_argument("--tenant", default="", help="Tenant for rows that name none (default: no tenant).")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report, change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        provider = checked_text(options["provider"], "--provider", max_length=IDENTITY_MAX_LENGTH)
        tenant = checked_text(options["tenant"], "--tenant", max_length=IDENTITY_MAX_LENGTH, allow_blank=True)
        if not provider.startswith("oauth:"):
            raise CommandError(f"--provider must look like oauth:<name>, got {options['provider']!r}.")
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                rows = migration.read_rows(handle, default_provider=provider, default_tenant=tenant)
                result = migration.import_rows(rows, actor=self.actor, dry_run=options["dry_run"])
        except migration.BadFile as error:
            raise CommandError(f"{path}: {error}") from error
        except UnicodeDecodeError as error:
            raise CommandError(f"{path}: not UTF-8 text ({error.reason}).") from error

        prefix = "Dry run (nothing changed): " if options["dry_run"] else ""
        self.stdout.write(
            f"{prefix}{len(result.created)} created, {len(result.credited)} existing accounts credited, "
            f"{len(result.skipped)} skipped (already imported), {len(result.rejected)} rejected."
        )
        if options["verbosity"] >= 2:
            done = [(line, f"created {email}") for line, email in result.created]
            done += [(line, f"credited existing account {email}") for line, email in result.credited]
            done += [(line, f"skipped {email} (already imported)") for line, email in result.skipped]
            for line, what in sorted(done):
                self.stdout.write(f"  line {line}: {what}")
        for line, why in result.rejected:
            self.stderr.write(f"  line {line}: rejected: {why}")
        if result.rejected:
            raise CommandError(f"{len(result.rejected)} rows rejected; fix them and run again.", returncode=1)

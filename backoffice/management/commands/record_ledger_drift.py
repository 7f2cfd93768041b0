"""manage.py record_ledger_drift --account-id ID --reason TEXT"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.models import Account
from backoffice.commands import BackofficeCommand, require_reason
from ledger.services import ledger_record_drift


class Command(BackofficeCommand):
    help = (
        "When `reconcile` finds an account whose balance or free uses differ from its ledger (the row was "
        "changed outside the ledger), record the difference as one adjustment entry so both agree again. "
        "The account keeps what it has; take credit back afterwards with grant_credits --kind adjustment."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account-id", required=True, help="The account's id (a UUID).")
        parser.add_argument("--reason", required=True, help="Why (recorded on the ledger).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            account_id = uuid.UUID(options["account_id"])
        except ValueError as error:
            raise CommandError(f"--account-id must be a UUID, got {options['account_id']!r}.") from error
        reason = require_reason(options)
        if not Account.objects.filter(pk=account_id).exists():
            raise CommandError(f"No account {account_id}.")
        entry = ledger_record_drift(account_id=account_id, actor=self.actor, reason=reason)
        if entry is None:
            self.stdout.write(f"Account {account_id} agrees with its ledger; nothing recorded.")
            return
        self.stdout.write(
            f"Recorded drift on account {account_id} as ledger entry #{entry.pk}: "
            f"{entry.balance_delta_minor:+d} minor units, {entry.free_uses_delta:+d} free uses."
        )

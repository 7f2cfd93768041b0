"""The shared body of suspend_account, reactivate_account and close_account."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.models import AccountStatus
from accounts.services import account_set_status
from backoffice.commands import (
    STATUS_REASON_MAX_LENGTH,
    BackofficeCommand,
    add_identity_arguments,
    find_account,
    identity_from_options,
    require_reason,
)
from billing_site.errors import BillingError


class StatusCommand(BackofficeCommand):
    target: AccountStatus
    verb: str

    def add_arguments(self, parser: CommandParser) -> None:
        add_identity_arguments(parser)
        parser.add_argument("--reason", required=True, help="Why (recorded on the ledger).")
        parser.add_argument("--dry-run", action="store_true", help="Say what would happen, change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        account = find_account(identity_from_options(options))
        reason = require_reason(options, max_length=STATUS_REASON_MAX_LENGTH)  # kept on the account too
        if options["dry_run"]:
            self.stdout.write(f"Dry run: would {self.verb} {account} (now {account.status}). Nothing changed.")
            return
        try:
            account_set_status(account_id=account.pk, status=self.target, reason=reason, actor=self.actor)
        except BillingError as error:
            raise CommandError(error.detail) from error
        self.stdout.write(f"{account}: now {self.target}.")

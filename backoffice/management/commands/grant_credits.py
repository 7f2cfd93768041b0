"""manage.py grant_credits --provider P --external-id X [--tenant T] (--uses N | --amount-minor N | --free-uses N)
--reason TEXT [--idempotency-key K] [--kind grant|adjustment] [--create] [--dry-run]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.models import Account
from accounts.services import account_get_or_create, account_grant, uses_to_minor
from backoffice.commands import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    BackofficeCommand,
    add_identity_arguments,
    checked_text,
    find_account,
    identity_from_options,
    require_reason,
)
from billing_site.errors import BillingError
from ledger.models import EntryKind
from ledger.services import MAX_BALANCE_MINOR, MAX_COUNT


class Command(BackofficeCommand):
    help = (
        "Grant paid credit (in uses or credit minor units) or free uses to an account, as a ledger entry "
        "with this command as its actor. Safe to re-run with the same --idempotency-key: a replay grants nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_identity_arguments(parser)
        amount = parser.add_mutually_exclusive_group(required=True)
        amount.add_argument("--uses", type=int, help="Paid uses to add (times BILLING_USE_PRICE_MINOR).")
        amount.add_argument("--amount-minor", type=int, help="Credit minor units to add.")
        amount.add_argument("--free-uses", type=int, help="Free uses to add.")
        parser.add_argument("--reason", required=True, help="Why (recorded on the ledger).")
        parser.add_argument("--idempotency-key", default=None, help="Makes a re-run a no-op (recommended).")
        parser.add_argument(
            "--kind",
            choices=[EntryKind.GRANT, EntryKind.ADJUSTMENT],
            default=EntryKind.GRANT,
            help="grant (default; positive) or adjustment (a correction; may be negative).",
        )
        parser.add_argument("--create", action="store_true", help="Create the account if it does not exist yet.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be granted, change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        identity = identity_from_options(options)
        reason = require_reason(options)
        key = options["idempotency_key"]
        if key is not None:
            key = checked_text(key, "--idempotency-key", max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
        kind = EntryKind(options["kind"])
        amount_minor = free_uses = 0
        if options["uses"] is not None:
            amount_minor = uses_to_minor(options["uses"])
        elif options["amount_minor"] is not None:
            amount_minor = options["amount_minor"]
        else:
            free_uses = options["free_uses"]
        if amount_minor == 0 and free_uses == 0:
            raise CommandError("The amount must not be zero.")
        if abs(amount_minor) > MAX_BALANCE_MINOR or abs(free_uses) > MAX_COUNT:
            raise CommandError("The amount is larger than any balance or count an account can hold.")
        if kind == EntryKind.GRANT and (amount_minor < 0 or free_uses < 0):
            raise CommandError("A grant must be positive; use --kind adjustment to take credit back.")
        what = f"{amount_minor:+d} credit minor units" if amount_minor else f"{free_uses:+d} free uses"

        account = Account.objects.filter(identity.lookup()).first() if options["create"] else find_account(identity)
        if options["dry_run"]:
            target = account or f"a new account {identity.oauth_provider}:{identity.external_id}"
            self.stdout.write(f"Dry run: would {kind} {what} to {target} ({reason!r}). Nothing changed.")
            return
        if account is None:
            account, _ = account_get_or_create(identity=identity, actor=self.actor)
        try:
            entry, created = account_grant(
                account=account,
                actor=self.actor,
                reason=reason,
                amount_minor=amount_minor,
                free_uses=free_uses,
                kind=kind,
                idempotency_key=key,
            )
        except BillingError as error:
            raise CommandError(error.detail) from error
        if not created:
            self.stdout.write(f"Already granted with key {key!r} (ledger entry #{entry.pk}); nothing changed.")
            return
        self.stdout.write(
            f"Granted {what} to {account} (ledger entry #{entry.pk}): balance {entry.balance_after_minor} minor, "
            f"{entry.free_uses_after} free uses."
        )

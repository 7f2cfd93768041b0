"""Shared pieces of the operators' commands: identity options, text checks and account lookup."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.identity import Identity
from accounts.models import Account
from billing_site.fields import is_storable_text
from ledger.models import LedgerEntry

# The columns these options end up in: a longer value would fail in the database (a
# traceback), so it is refused up front with the option's name.
IDENTITY_MAX_LENGTH = Account._meta.get_field("external_id").max_length or 255
IDEMPOTENCY_KEY_MAX_LENGTH = LedgerEntry._meta.get_field("idempotency_key").max_length or 255
STATUS_REASON_MAX_LENGTH = Account._meta.get_field("status_reason").max_length or 500


def add_identity_arguments(parser: CommandParser) -> None:
    parser.add_argument("--provider", required=True, help="OAuth provider, e.g. oauth:google.")
    parser.add_argument("--external-id", required=True, help="The user's id at that provider.")
    parser.add_argument("--tenant", default="", help="Tenant id (empty for none).")


def checked_text(value: str | None, option: str, *, max_length: int | None, allow_blank: bool = False) -> str:
    """The option's value, stripped, if the database can store it; else a CommandError naming the option."""
    value = (value or "").strip()
    if not value and not allow_blank:
        raise CommandError(f"{option} must not be empty.")
    if max_length is not None and len(value) > max_length:
        raise CommandError(f"{option} must be at most {max_length} characters, got {len(value)}.")
    if not is_storable_text(value):
        raise CommandError(f"{option} must be valid UTF-8 text without NUL characters.")
    return value


def identity_from_options(options: dict[str, Any]) -> Identity:
    if not (options["provider"] or "").strip() or not (options["external_id"] or "").strip():
        raise CommandError("--provider and --external-id must not be empty.")
    return Identity(
        oauth_provider=checked_text(options["provider"], "--provider", max_length=IDENTITY_MAX_LENGTH),
        external_id=checked_text(options["external_id"], "--external-id", max_length=IDENTITY_MAX_LENGTH),
        tenant_id=checked_text(options["tenant"], "--tenant", max_length=IDENTITY_MAX_LENGTH, allow_blank=True),
    )


def find_account(identity: Identity) -> Account:
    account = Account.objects.filter(identity.lookup()).first()
    if account is None:
        tenant = f" in tenant {identity.tenant_id!r}" if identity.tenant_id else " (no tenant)"
        raise CommandError(f"No account for {identity.oauth_provider} {identity.external_id!r}{tenant}.")
    return account


def require_reason(options: dict[str, Any], *, max_length: int | None = None) -> str:
    if not (options.get("reason") or "").strip():
        raise CommandError("--reason must not be empty: it is recorded on the ledger.")
    return checked_text(options["reason"], "--reason", max_length=max_length)


class BackofficeCommand(BaseCommand):
    """Base: the command's name is its ledger actor (`command:<name>`)."""

    @property
    def actor(self) -> str:
        return f"command:{self.__module__.rsplit('.', 1)[-1]}"

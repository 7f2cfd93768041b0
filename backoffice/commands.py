"""Shared pieces of the operators' commands: identity options and account lookup."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.identity import Identity
from accounts.models import Account


def add_identity_arguments(parser: CommandParser) -> None:
    parser.add_argument("--provider", required=True, help="OAuth provider, e.g. oauth:google.")
    parser.add_argument("--external-id", required=True, help="The user's id at that provider.")
    parser.add_argument("--tenant", default="", help="Tenant id (empty for none).")


def identity_from_options(options: dict[str, Any]) -> Identity:
    provider, external_id = options["provider"].strip(), options["external_id"].strip()
    if not provider or not external_id:
        raise CommandError("--provider and --external-id must not be empty.")
    return Identity(oauth_provider=provider, external_id=external_id, tenant_id=options["tenant"].strip())


def find_account(identity: Identity) -> Account:
    account = Account.objects.filter(identity.lookup()).first()
    if account is None:
        tenant = f" in tenant {identity.tenant_id!r}" if identity.tenant_id else " (no tenant)"
        raise CommandError(f"No account for {identity.oauth_provider} {identity.external_id!r}{tenant}.")
    return account


def require_reason(options: dict[str, Any]) -> str:
    reason = (options.get("reason") or "").strip()
    if not reason:
        raise CommandError("--reason must not be empty: it is recorded on the ledger.")
    return reason


class BackofficeCommand(BaseCommand):
    """Base: the command's name is its ledger actor (`command:<name>`)."""

    @property
    def actor(self) -> str:
        return f"command:{self.__module__.rsplit('.', 1)[-1]}"

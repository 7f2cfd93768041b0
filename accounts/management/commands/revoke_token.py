"""manage.py revoke_token <token-or-sha256> [--reason TEXT]"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.revocation import token_revoke


class Command(BaseCommand):
    help = (
        "Revoke a user's Google or Apple ID token (give the token, or its SHA-256 from a log). "
        "Refused from then on: at once with a shared cache (REDIS_URL), else within "
        "REVOKED_TOKEN_CACHE_SECONDS in every process."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", help="The ID token itself, or its SHA-256 (64 hex digits).")
        parser.add_argument("--reason", default="", help="Why (kept with the revocation, 500 characters at most).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            row, created = token_revoke(token_or_sha256=options["token"], reason=options["reason"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if created:
            self.stdout.write(f"Revoked token {row.token_sha256} {row.subject}".rstrip())
            self.stdout.write(f"Refused within {settings.REVOKED_TOKEN_CACHE_SECONDS} s in every process.")
        else:
            self.stdout.write(f"Already revoked on {row.created_at:%Y-%m-%d %H:%M} UTC: {row.token_sha256}")

"""manage.py create_api_key --name NAME --permissions read,write [--tenant T]"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import ApiKey, Scope


def parse_permissions(raw: str) -> list[str]:
    scopes = [p.strip().lower() for p in raw.split(",") if p.strip()]
    unknown = sorted(set(scopes) - set(Scope.values))
    if not scopes or unknown:
        raise CommandError(f"--permissions takes a comma-separated list of {', '.join(Scope.values)}; got {raw!r}")
    return sorted(set(scopes), key=list(Scope.values).index)


class Command(BaseCommand):
    help = "Create an API key for an agent. The key is printed once, alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="A label for the key (50 characters at most).")
        parser.add_argument(
            "--permissions", default="read,write", help="Comma-separated: read, write, admin (default read,write)."
        )
        parser.add_argument("--tenant", default="", help="Bind the key to one tenant's accounts.")
        parser.add_argument("--expires-in-days", type=int, default=None, help="Expire the key after N days.")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name or len(name) > 50:
            raise CommandError("--name must be 1 to 50 characters.")
        scopes = parse_permissions(options["permissions"])
        days = options["expires_in_days"]
        if days is not None and days <= 0:
            raise CommandError("--expires-in-days must be positive.")
        expiry = timezone.now() + timedelta(days=days) if days else None
        api_key, key = ApiKey.objects.create_key(
            name=name, permissions=",".join(scopes), tenant_id=options["tenant"].strip(), expiry_date=expiry
        )
        tenant = f", tenant {api_key.tenant_id}" if api_key.tenant_id else ""
        self.stdout.write(f"Created API key {api_key.prefix} ({name}; {','.join(scopes)}{tenant}). Store it now:")
        self.stdout.write(key)

"""Migration from the old provider (Unlimit): one account and one `migration` credit per CSV row.

Each row's credit has a deterministic idempotency key, so importing the same file again (or
a file that overlaps an earlier one) credits nobody twice. A migrated user is created like
any new user, through `account_get_or_create`, and so also gets the configured free uses:
one rule for every account, and a user who already met the service through an agent before
the import keeps what they had and is simply credited.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DataError, transaction

from accounts.identity import Identity
from accounts.models import Account
from accounts.services import account_get_or_create, credits_grant, uses_to_minor
from billing_site.errors import BillingError
from billing_site.fields import is_storable_text
from ledger.models import EntryKind, LedgerEntry

DEFAULT_PROVIDER = "oauth:google"
SOURCE = "unlimit"

# Header names seen in exports, normalised (lower case, spaces and dashes as underscores).
COLUMNS = {
    "email": "email",
    "e_mail": "email",
    "remaining_credits": "credits",
    "credits_remaining": "credits",
    "credits": "credits",
    "remaining_uses": "credits",
    "uses": "credits",
    "provider": "provider",
    "oauth_provider": "provider",
    "tenant": "tenant",
    "tenant_id": "tenant",
}
POSITIONAL = ["email", "credits", "provider", "tenant"]


def migration_key(email: str) -> str:
    return f"migration:{SOURCE}:{email}"


# What the columns hold. validate_email accepts up to 320 characters, the email column 254,
# and the email is also the external id (255) and part of the migration key (255).
IDENTITY_MAX_LENGTH = Account._meta.get_field("external_id").max_length or 255
EMAIL_MAX_LENGTH = min(
    Account._meta.get_field("email").max_length or 254,
    IDENTITY_MAX_LENGTH,
    (LedgerEntry._meta.get_field("idempotency_key").max_length or 255) - len(migration_key("")),
)


def _unstorable(name: str, value: str, max_length: int) -> str | None:
    """Why the database could not store this cell, or None."""
    if not is_storable_text(value):
        return f"{name} {value!r} contains a NUL or is not valid UTF-8 text"
    if len(value) > max_length:
        return f"{name} is too long ({len(value)} characters; at most {max_length})"
    return None


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    uses: int
    provider: str
    tenant: str


@dataclass
class ImportResult:
    created: list[tuple[int, str]] = field(default_factory=list)
    credited: list[tuple[int, str]] = field(default_factory=list)  # existing account, credit added
    skipped: list[tuple[int, str]] = field(default_factory=list)  # already imported
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, why)


class BadFile(Exception):
    """The file as a whole cannot be read (no email column, not CSV)."""


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_").lstrip("\ufeff")


def read_rows(lines: Iterable[str], *, default_provider: str, default_tenant: str) -> Iterator[Row | tuple[int, str]]:
    """Yield a Row per good line, or (line number, reason) per bad one. Line 1 is the header."""
    reader = csv.reader(lines)
    try:
        first = next(reader)
    except StopIteration:
        raise BadFile("The file is empty.") from None
    except csv.Error as error:
        raise BadFile(f"Not a CSV file: {error}") from None
    header = [COLUMNS.get(_normalise(cell), "") for cell in first]
    if "email" in header:
        columns = header
        if "credits" not in columns:
            raise BadFile("The header has no remaining credits column (remaining_credits, credits or uses).")
    elif first and "@" in first[0]:
        columns = POSITIONAL  # no header: email, credits[, provider[, tenant]]
        yield _parse(
            1,
            dict(zip(columns, (c.strip() for c in first), strict=False)),
            default_provider=default_provider,
            default_tenant=default_tenant,
        )
    else:
        raise BadFile("Line 1 must be a header naming the email and remaining credits columns.")
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield (reader.line_num, f"unreadable CSV: {error}")
            return
        if not any(cell.strip() for cell in cells):
            continue
        values = {name: cell.strip() for name, cell in zip(columns, cells, strict=False) if name}
        yield _parse(reader.line_num, values, default_provider=default_provider, default_tenant=default_tenant)


def _parse(line: int, values: dict[str, str], *, default_provider: str, default_tenant: str) -> Row | tuple[int, str]:
    email = values.get("email", "").lower()
    if problem := _unstorable("email", email, EMAIL_MAX_LENGTH):
        return (line, problem)
    try:
        validate_email(email)
    except ValidationError:
        return (line, f"invalid email {values.get('email', '')!r}")
    raw = values.get("credits", "")
    try:
        uses = int(raw)
    except ValueError:
        return (line, f"remaining credits must be a whole number of uses, got {raw!r}")
    if uses < 0:
        return (line, f"remaining credits cannot be negative ({uses})")
    provider = values.get("provider") or default_provider
    if problem := _unstorable("provider", provider, IDENTITY_MAX_LENGTH):
        return (line, problem)
    if not provider.startswith("oauth:"):
        return (line, f"provider must look like oauth:<name>, got {provider!r}")
    tenant = values.get("tenant") or default_tenant
    if problem := _unstorable("tenant", tenant, IDENTITY_MAX_LENGTH):
        return (line, problem)
    return Row(line=line, email=email, uses=uses, provider=provider, tenant=tenant)


def import_rows(rows: Iterable[Row | tuple[int, str]], *, actor: str, dry_run: bool = False) -> ImportResult:
    result = ImportResult()
    for row in rows:
        if isinstance(row, tuple):
            result.rejected.append(row)
            continue
        identity = Identity(oauth_provider=row.provider, external_id=row.email, tenant_id=row.tenant, email=row.email)
        if dry_run:
            try:
                with transaction.atomic():
                    account = Account.objects.filter(identity.lookup()).first()
                    imported = account is not None and (
                        account.ledger_entries.filter(idempotency_key=migration_key(row.email)).exists()
                    )
            except DataError as error:
                result.rejected.append((row.line, f"{row.email}: the database cannot store this row ({error})"))
                continue
            if account is None:
                result.created.append((row.line, row.email))
            elif not row.uses or imported:
                result.skipped.append((row.line, row.email))
            else:
                result.credited.append((row.line, row.email))
            continue
        try:
            with transaction.atomic():
                _, created = account_get_or_create(identity=identity, actor=actor)
                granted = True
                if row.uses:
                    _, granted = credits_grant(
                        identity=identity,
                        actor=actor,
                        reason=f"Migrated from {SOURCE}: {row.uses} remaining uses",
                        amount_minor=uses_to_minor(row.uses),
                        kind=EntryKind.MIGRATION,
                        idempotency_key=migration_key(row.email),
                    )
        except BillingError as error:  # e.g. the same email imported before with another amount
            result.rejected.append((row.line, f"{row.email}: {error.detail}"))
            continue
        except DataError as error:
            # A backstop behind the checks in _parse: the row's transaction is rolled back,
            # the row is reported, and the rest of the file is still imported.
            result.rejected.append((row.line, f"{row.email}: the database cannot store this row ({error})"))
            continue
        if not granted:  # imported before (the same key and amount): nothing new
            result.skipped.append((row.line, row.email))
        elif created:
            result.created.append((row.line, row.email))
        elif row.uses:
            result.credited.append((row.line, row.email))
        else:
            result.skipped.append((row.line, row.email))  # nothing to migrate, account already there
    return result

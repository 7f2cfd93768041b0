"""Revoking users' ID tokens, and asking whether one is revoked.

Every request with a user token asks `is_revoked` once its signature checks out; nothing
about a verified token is cached, so no cached verdict can answer before this check. The
answer is cached (in the shared cache) for REVOKED_TOKEN_CACHE_SECONDS; a revocation writes
"revoked" into the cache after its commit, so it takes effect at once wherever the cache is
shared (Redis), and within REVOKED_TOKEN_CACHE_SECONDS in other processes when each has its
own (no REDIS_URL).
"""

from __future__ import annotations

import re
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction

from accounts.id_tokens import token_sha256
from accounts.models import RevokedToken

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def revoked_cache_key(sha256: str) -> str:
    return f"idtoken:revoked:{sha256}"


def is_revoked(sha256: str) -> bool:
    """Whether staff revoked the token with this SHA-256 (cached; see the module's bound)."""
    key = revoked_cache_key(sha256)
    revoked = cache.get(key)
    if revoked is None:
        revoked = RevokedToken.objects.filter(token_sha256=sha256).exists()
        # add, not set: a revocation that committed after this read has already written
        # "revoked", and a stale "not revoked" must not replace it.
        cache.add(key, revoked, settings.REVOKED_TOKEN_CACHE_SECONDS)
    return bool(revoked)


def _subject(token: str) -> str:
    """Who a token claims to be, read without verifying it: a label for staff, nothing more."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    return " ".join(str(part) for part in (claims.get("iss", ""), claims.get("sub", ""), email) if part)[:300]


def normalize(token_or_sha256: str) -> tuple[str, str]:
    """(SHA-256, subject) for a token, or for a SHA-256 staff already have (from a log)."""
    value = token_or_sha256.strip()
    if SHA256_HEX.fullmatch(value.lower()):
        return value.lower(), ""
    if not value:
        raise ValueError("Give a token or its SHA-256.")
    return token_sha256(value), _subject(value)


def token_revoke(
    *, token_or_sha256: str, reason: str = "", staff_user: User | None = None
) -> tuple[RevokedToken, bool]:
    """Revoke a token (given itself or as its SHA-256); (the row, whether it is new).

    Revoking twice keeps the first row. The cache learns it after the commit, so no reader
    can cache "not revoked" from a snapshot taken before it.
    """
    sha256, subject = normalize(token_or_sha256)
    with transaction.atomic():
        row, created = RevokedToken.objects.get_or_create(
            token_sha256=sha256,
            defaults={"subject": subject, "reason": reason[:500], "revoked_by": staff_user},
        )
        transaction.on_commit(lambda: cache.set(revoked_cache_key(sha256), True, settings.REVOKED_TOKEN_CACHE_SECONDS))
    return row, created

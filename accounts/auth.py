"""Who is calling: an agent's API key, or a signed-in user's Google or Apple ID token.

API keys: djangorestframework-api-key provides the key model, generation and SHA-512
hashing; its `HasAPIKey` is a permission that looks the key up on every check. We need the
key's scopes and tenant on `request.auth` and must not hit the database per request (it is
on the hot path of every check and charge), so the key is verified against a copy of its
row in the shared cache. Saving or deleting a key drops that copy and stamps the key as
changed (`key_changed`, after the commit): see `_load_shared_key_record` for why a dropped
copy alone is not enough.

User tokens (the CIRIS agent on phones and desktops, which has no API key): a Bearer value
with two dots is an ID token, verified by accounts.id_tokens after the revocation check. It
acts as that user only, and only on the views that declare `user_tokens_allowed`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, cast

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework_api_key.crypto import split

from accounts import id_tokens
from accounts.models import SCOPE_RANK, ApiKey, Scope
from accounts.revocation import is_revoked
from billing_site.errors import ServiceUnavailable
from billing_site.ratelimit import record_auth_failure

_MISSING = "missing"
# djangorestframework-api-key prefixes are 8 letters/digits; anything else is no key of ours
# (and never reaches the cache or the database).
_PREFIX = re.compile(r"[A-Za-z0-9]{8}")


# Rank by plain string: `Scope.values` is rebuilt on every access.
_RANK: dict[str, int] = {str(scope.value): rank for scope, rank in SCOPE_RANK.items()}


# Each cached row carries the change stamp that was current when it was read (v2: rows
# without one, cached by an older release, are never used).
def api_key_cache_key(prefix: str) -> str:
    return f"apikey:v2:{prefix}"


def api_key_stamp_key(prefix: str) -> str:
    return f"apikey:v2:changed:{prefix}"


_STAMP = "_stamp"
# How much longer than a cached row a change stamp lives (a cache write's own latency).
CHANGE_STAMP_MARGIN_SECONDS = 2


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling: set as `request.auth` (and `request.user`) by ApiKeyAuthentication."""

    prefix: str
    name: str
    scopes: frozenset[str]
    tenant_id: str = ""
    is_authenticated: bool = True

    @property
    def actor(self) -> str:
        return f"api_key:{self.prefix}"

    @property
    def pk(self) -> str:
        # DRF's throttles identify an authenticated user by pk.
        return self.actor

    def allows(self, scope: str) -> bool:
        rank = _RANK[scope]
        return any(_RANK.get(s, 0) >= rank for s in self.scopes)

    def own_input(self, data: Any) -> Any:
        """An agent's key names the user in the input: unchanged (see UserPrincipal.own_input)."""
        return data


@dataclass(frozen=True)
class UserPrincipal:
    """A signed-in end user (a verified Google or Apple ID token): acts on its own account only.

    It carries no scopes: HasApiScope lets it through only on views that declare
    `user_tokens_allowed`, and `own_input` puts its identity in place of any the request
    names. Its account has no tenant.
    """

    provider: str
    sub: str
    email: str = ""
    tenant_id: str = ""
    is_authenticated: bool = True

    @property
    def actor(self) -> str:
        return f"user:{self.provider}:{self.sub}"[:255]

    @property
    def pk(self) -> str:
        # DRF's throttles identify an authenticated user by pk.
        return self.actor

    def own_input(self, data: Any) -> Any:
        """The request's input (body or query string) with this user's identity in it.

        The one rule for user tokens: the identity comes from the token, never the request.
        Whatever identity the input names is replaced (so a client may also leave it out),
        with no tenant and the token's email as the customer's. The input helpers call this
        on every caller before validating, then `identity_from` works as for any caller.
        """
        if not isinstance(data, Mapping):
            return data  # not an object: validation refuses it
        own = {"oauth_provider": self.provider, "external_id": self.sub, "tenant_id": None}
        if self.email:
            own["customer_email"] = self.email
        return {**{key: data[key] for key in data}, **own}


Principal = ApiPrincipal | UserPrincipal


def principal(request: Request) -> Principal:
    """The caller of an API view: what authentication set as `request.auth` (DRF types it as a
    Token; every API view runs behind ApiKeyAuthentication, which sets one of these)."""
    return cast(Principal, request.auth)


# With API_KEYS_REQUIRED off, a caller without a key may check and charge, never grant:
# minting credit always takes an admin key.
OPEN_ACCESS = ApiPrincipal(prefix="none", name="auth disabled", scopes=frozenset({Scope.READ, Scope.WRITE}))


def _load_key_record(prefix: str) -> dict[str, Any] | None:
    record = _load_shared_key_record(prefix)
    return None if record.get(_MISSING) else record


def _read_key_row(prefix: str) -> dict[str, Any]:
    row = (
        ApiKey.objects.filter(prefix=prefix)
        .values("hashed_key", "name", "permissions", "tenant_id", "revoked", "expiry_date")
        .first()
    )
    return row if row is not None else {_MISSING: True}


def _load_shared_key_record(prefix: str) -> dict[str, Any]:
    """The key's row from the shared cache (one round trip for the row and the stamp), else SQL.

    The race this closes: a request reads the row, the revocation commits and drops the
    cached copy, then the request caches the row it read -- the old one. Dropping is not
    enough, so a change also writes a new random stamp (after its commit), and a cached row
    is used only while the stamp it was read under is still the current one. The old row,
    read under the previous stamp (or none), is ignored from the moment the new stamp is
    written. A stamp outlives every row read before it: a row is cached for at most
    API_KEY_CACHE_SECONDS counted from before its read (its snapshot), the stamp for that
    long plus CHANGE_STAMP_MARGIN_SECONDS from after the commit.
    """
    row_key, stamp_key = api_key_cache_key(prefix), api_key_stamp_key(prefix)
    cached = cache.get_many([row_key, stamp_key])
    stamp = cached.get(stamp_key)
    cached_record: dict[str, Any] | None = cached.get(row_key)
    if cached_record is not None and cached_record.get(_STAMP) == stamp:
        return cached_record
    started = time.monotonic()
    record = {**_read_key_row(prefix), _STAMP: stamp}
    ttl = int(settings.API_KEY_CACHE_SECONDS - (time.monotonic() - started))
    if ttl > 0:
        cache.set(row_key, record, ttl)
    return record


def key_changed(prefix: str) -> None:
    """After a key's change committed: a new stamp, and the cached copy dropped."""
    cache.set(api_key_stamp_key(prefix), uuid.uuid4().hex, settings.API_KEY_CACHE_SECONDS + CHANGE_STAMP_MARGIN_SECONDS)
    cache.delete(api_key_cache_key(prefix))


def _verify(key: str, hashed_key: str) -> bool:
    generator = ApiKey.objects.key_generator
    if generator.using_preferred_hasher(hashed_key):
        return bool(generator.verify(key, hashed_key))
    # Keys hashed by an old release use a slow password hasher; the model upgrades them.
    api_key = ApiKey.objects.filter(hashed_key=hashed_key).first()
    return bool(api_key and api_key.is_valid(key))


def extract_key(request: Request) -> str | None:
    key: str | None = request.META.get("HTTP_X_API_KEY")
    if key:
        return key.strip()
    return bearer_value(request)


def bearer_value(request: Request) -> str | None:
    authorization: str = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _id_token(request: Request) -> str | None:
    """The ID token a request carries (no X-API-Key, and a Bearer value with two dots)."""
    if request.META.get("HTTP_X_API_KEY"):
        return None
    value = bearer_value(request)
    return value if value is not None and id_tokens.looks_like_id_token(value) else None


def _failed(request: Request, detail: str, code: str) -> NoReturn:
    """401, counted against the client: one that keeps failing gets 429s (guessing keys).

    Only failures are counted and refused: a valid key is never turned away because
    another caller behind the same address (a proxy, a NAT) sent bad ones.
    """
    wait = record_auth_failure(request)
    if wait is not None:
        raise exceptions.Throttled(wait=wait, detail="Too many failed API key attempts.")
    raise exceptions.AuthenticationFailed(detail, code=code)


def _user_from_token(request: Request, token: str) -> UserPrincipal:
    """The user an ID token names; 401 for any token we refuse, 503 if its keys are out of reach.

    Nothing about a verified token is cached: every request verifies the signature, then asks
    whether staff revoked it (after verifying, so forged tokens never reach the cache or the
    database). An expired token is not counted as a failed attempt: the agent refreshes it.
    """
    try:
        verified = id_tokens.verify_id_token(token)
        if is_revoked(id_tokens.token_sha256(token)):
            raise id_tokens.RevokedIdToken("The token has been revoked.")
    except id_tokens.ExpiredIdToken as exc:
        raise exceptions.AuthenticationFailed(str(exc), code=exc.code) from exc
    except id_tokens.InvalidIdToken as exc:
        _failed(request, str(exc), exc.code)
    except id_tokens.KeySetUnavailable as exc:
        raise ServiceUnavailable(
            f"{exc} Sign-in cannot be checked right now; retry later.",
            retry_after=id_tokens.JWKS_RETRY_AFTER_SECONDS,
        ) from exc
    return UserPrincipal(provider=verified.provider, sub=verified.sub, email=verified.email)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates `X-API-Key: <key>`, `Authorization: Bearer <key>` or a user's
    `Authorization: Bearer <ID token>`."""

    def authenticate(self, request: Request) -> tuple[Principal, Principal] | None:
        token = _id_token(request)
        if token is not None:
            user = _user_from_token(request, token)
            return user, user
        key = extract_key(request)
        if key is None:
            if not settings.API_KEYS_REQUIRED:
                return OPEN_ACCESS, OPEN_ACCESS
            return None
        prefix, _ = split(key)
        record = _load_key_record(prefix) if _PREFIX.fullmatch(prefix) else None
        if record is None or not _verify(key, record["hashed_key"]):
            _failed(request, "Invalid API key.", "invalid_api_key")
        if record["revoked"]:
            _failed(request, "API key revoked.", "api_key_revoked")
        expiry: datetime | None = record["expiry_date"]
        if expiry is not None and expiry < timezone.now():
            _failed(request, "API key expired.", "api_key_expired")
        scopes = frozenset(p.strip() for p in record["permissions"].split(",") if p.strip())
        principal = ApiPrincipal(prefix=prefix, name=record["name"], scopes=scopes, tenant_id=record["tenant_id"])
        return principal, principal

    def authenticate_header(self, request: Request) -> str:
        # Returning a challenge makes DRF answer 401 (not 403) for a missing or bad key. A
        # refused ID token gets RFC 6750's challenge: the agent refreshes its token on it.
        if _id_token(request) is not None:
            return 'Bearer realm="ciris-billing", error="invalid_token"'
        return 'Bearer realm="ciris-billing", X-API-Key'


class HasApiScope(permissions.BasePermission):
    """Requires `view.required_scope` (read, write or admin) on the caller's key; a user token
    passes only where the view sets `user_tokens_allowed` (its own credit, tools, history,
    purchases), never to charge, grant, post usage or read accounts by id."""

    message = "This API key lacks the permission for this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if isinstance(principal, UserPrincipal):
            if getattr(view, "user_tokens_allowed", False):
                return True
            raise exceptions.PermissionDenied(
                "A user token may not do this: it may check its own credit and tools, read its own "
                "transactions and make or verify its own purchases.",
                code="user_token_forbidden",
            )
        if not isinstance(principal, ApiPrincipal):
            raise exceptions.NotAuthenticated("An API key is required (X-API-Key or Authorization: Bearer).")
        required = getattr(view, "required_scope", Scope.ADMIN)
        return principal.allows(required)

"""API-key authentication and scope permissions.

djangorestframework-api-key provides the key model, generation and SHA-512 hashing; its
`HasAPIKey` is a permission that looks the key up on every check. We need the key's scopes
and tenant on `request.auth` and must not hit the database per request (it is on the hot
path of every check and charge), so this authentication class verifies the key once
against a cached copy of its row. Saving or deleting a key drops the cached copies and
stamps the key as changed (`key_changed`, after the commit): see `_load_shared_key_record`
for why a dropped copy alone is not enough.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NoReturn, cast

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework_api_key.crypto import split

from accounts.models import SCOPE_RANK, ApiKey, Scope
from billing_site.ratelimit import record_auth_failure

_MISSING = "missing"
# djangorestframework-api-key prefixes are 8 letters/digits; anything else is no key of ours
# (and never reaches the cache or the database).
_PREFIX = re.compile(r"[A-Za-z0-9]{8}")


# Rank by plain string: `Scope.values` is rebuilt on every access (5% of a credit check's CPU).
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


def principal(request: Request) -> ApiPrincipal:
    """The caller of an API view: what authentication set as `request.auth` (DRF types it as a
    Token; every API view runs behind ApiKeyAuthentication, which sets an ApiPrincipal)."""
    return cast(ApiPrincipal, request.auth)


# With API_KEYS_REQUIRED off, a caller without a key may check and charge, never grant:
# minting credit always takes an admin key.
OPEN_ACCESS = ApiPrincipal(prefix="none", name="auth disabled", scopes=frozenset({Scope.READ, Scope.WRITE}))


# A process-local copy in front of the shared cache: with REDIS_URL the shared cache is a
# network round trip, and every request verifies a key. A change of the key drops this
# process's copy at once; other processes notice within API_KEY_LOCAL_CACHE_SECONDS
# (default 5 s). A bounded LRU: a flood of made-up prefixes cannot grow it, and evicts the
# least recently used entries, not the keys in use.
_local_keys: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
_LOCAL_KEYS_MAX = 1024
_local_lock = threading.Lock()
# Counts the changes this process has seen: a load that began before one of them may have
# read the old row, and must not leave it here after the change dropped the copy.
_local_generation = 0


def forget_local_key(prefix: str) -> None:
    global _local_generation
    with _local_lock:
        _local_keys.pop(prefix, None)
        _local_generation += 1


def _local_key_record(prefix: str, now: float) -> dict[str, Any] | None:
    """This process's unexpired copy of the key's record (or of its absence), if any."""
    with _local_lock:
        local = _local_keys.get(prefix)
        if local is None or local[0] <= now:
            return None
        _local_keys.move_to_end(prefix)
        return local[1]


def _remember_local(prefix: str, record: dict[str, Any], expires: float, generation: int | None = None) -> None:
    with _local_lock:
        if generation is not None and generation != _local_generation:
            return  # a change came while this record was loaded: it may be the old row
        _local_keys[prefix] = (expires, record)
        _local_keys.move_to_end(prefix)
        while len(_local_keys) > _LOCAL_KEYS_MAX:
            _local_keys.popitem(last=False)


def _load_key_record(prefix: str) -> dict[str, Any] | None:
    ttl = settings.API_KEY_LOCAL_CACHE_SECONDS
    now = time.monotonic()
    record = _local_key_record(prefix, now) if ttl > 0 else None
    if record is None:
        generation = _local_generation
        record = _load_shared_key_record(prefix)
        if ttl > 0:
            _remember_local(prefix, record, now + ttl, generation)
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
    record = cached.get(row_key)
    if record is not None and record.get(_STAMP) == stamp:
        return record
    started = time.monotonic()
    record = {**_read_key_row(prefix), _STAMP: stamp}
    ttl = int(settings.API_KEY_CACHE_SECONDS - (time.monotonic() - started))
    if ttl > 0:
        cache.set(row_key, record, ttl)
    return record


def key_changed(prefix: str) -> None:
    """After a key's change committed: new stamp, cached copies dropped (this process at once)."""
    cache.set(api_key_stamp_key(prefix), uuid.uuid4().hex, settings.API_KEY_CACHE_SECONDS + CHANGE_STAMP_MARGIN_SECONDS)
    cache.delete(api_key_cache_key(prefix))
    forget_local_key(prefix)


@lru_cache(maxsize=_LOCAL_KEYS_MAX)
def _hashes_to(key: str, hashed_key: str) -> bool:
    """Whether `key` hashes (SHA-512) to `hashed_key`: a pure function, so remembered for the
    pairs last asked (verifying cost every request 27k instructions, 11 us; a remembered
    answer is a dict lookup). Revocation and expiry are the row's, checked on every request."""
    return bool(ApiKey.objects.key_generator.verify(key, hashed_key))


def _verify(key: str, hashed_key: str) -> bool:
    generator = ApiKey.objects.key_generator
    if generator.using_preferred_hasher(hashed_key):
        return _hashes_to(key, hashed_key)
    # Keys hashed by an old release use a slow password hasher; the model upgrades them.
    api_key = ApiKey.objects.filter(hashed_key=hashed_key).first()
    return bool(api_key and api_key.is_valid(key))


def extract_key(request: Request) -> str | None:
    key = request.META.get("HTTP_X_API_KEY")
    if key:
        return key.strip()
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _failed(request: Request, detail: str, code: str) -> NoReturn:
    """401, counted against the client: one that keeps failing gets 429s (guessing keys).

    Only failures are counted and refused: a valid key is never turned away because
    another caller behind the same address (a proxy, a NAT) sent bad ones.
    """
    wait = record_auth_failure(request)
    if wait is not None:
        raise exceptions.Throttled(wait=wait, detail="Too many failed API key attempts.")
    raise exceptions.AuthenticationFailed(detail, code=code)


@lru_cache(maxsize=_LOCAL_KEYS_MAX)
def _principal(prefix: str, name: str, permissions: str, tenant_id: str) -> ApiPrincipal:
    """The caller a key row's values describe; frozen, so one serves every request with them
    (making it, scopes parsed, was 4 us of every request's CPU; looked up: 0.3 us)."""
    scopes = frozenset(p.strip() for p in permissions.split(",") if p.strip())
    return ApiPrincipal(prefix=prefix, name=name, scopes=scopes, tenant_id=tenant_id)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates `X-API-Key: <key>` or `Authorization: Bearer <key>`."""

    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiPrincipal] | None:
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
        principal = _principal(prefix, record["name"], record["permissions"], record["tenant_id"])
        return principal, principal

    def authenticate_header(self, request: Request) -> str:
        # Returning a challenge makes DRF answer 401 (not 403) for a missing or bad key.
        return 'Bearer realm="ciris-billing", X-API-Key'


class HasApiScope(permissions.BasePermission):
    """Requires `view.required_scope` (read, write or admin) on the caller's key."""

    message = "This API key lacks the permission for this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            raise exceptions.NotAuthenticated("An API key is required (X-API-Key or Authorization: Bearer).")
        required = getattr(view, "required_scope", Scope.ADMIN)
        return principal.allows(required)

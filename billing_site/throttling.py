"""Rate limits per API key and per end user, in one cache round trip.

DRF's stock SimpleRateThrottle keeps a list of request timestamps per key and does a
get and a set per throttle (two round trips each, four for two scopes, with a growing
list to pickle). On the hot path every round trip shows (shared/STACK.md), so this is a
fixed-window counter instead: one INCR per scope, and with Redis both scopes' INCR and
EXPIRE go in one pipeline, one round trip. A fixed window lets a burst of up to twice
the rate straddle a window edge; for abuse protection that is the usual trade.

Scopes (DESIGN: RATE_LIMIT_PER_KEY, RATE_LIMIT_PER_USER):
- per API key: the key's prefix (with auth switched off, the client address);
- per end user: (tenant, oauth_provider, external_id) from the request body, the same
  identity the account is found by. Requests without one (GETs) count per key only.

Without REDIS_URL the counters live in each process's memory: with N gunicorn
workers a client may get up to N times the rate. Production sets REDIS_URL.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.auth import OPEN_ACCESS, ApiPrincipal

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=16)
def parse_rate(rate: str) -> tuple[int, int] | None:
    """DRF's rate strings: "6000/min" -> (6000, 60). Empty or "0" disables that scope."""
    rate = (rate or "").strip()
    if not rate or rate in ("0", "none", "off"):
        return None
    count, _, period = rate.partition("/")
    seconds = _PERIODS.get(period.strip()[:1].lower())
    if seconds is None or not count.strip().isdigit():
        raise ValueError(f"Bad rate {rate!r}: expected N/s, N/min, N/hour or N/day")
    return int(count), seconds


def _redis_client() -> Any | None:
    """The raw Redis client behind the default cache, when it is django-redis."""
    try:
        from django_redis.cache import RedisCache
    except ImportError:  # pragma: no cover - django-redis is a requirement
        return None
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return backend.client.get_client(write=True)
    return None


def increment_counters(keys: list[tuple[str, int]]) -> list[int]:
    """INCR each (key, ttl) and return the new counts: one round trip on Redis.

    On any cache failure the request is allowed (counts 0): a cache outage must not stop
    billing, and the database still protects every balance.
    """
    backend = caches["default"]
    if isinstance(backend, LocMemCache):
        return _increment_local(keys)
    client = _redis_client()
    try:
        if client is not None:
            pipe = client.pipeline(transaction=False)
            for key, ttl in keys:
                pipe.incr(key)
                pipe.expire(key, ttl)
            results = pipe.execute()
            return [int(results[i * 2]) for i in range(len(keys))]
        counts = []
        for key, ttl in keys:
            try:
                counts.append(cache.incr(key))
            except ValueError:  # not there yet (or expired): start the window
                counts.append(1 if cache.add(key, 1, ttl) else cache.incr(key))
        return counts
    except Exception as exc:  # fail open, loudly
        logger.warning("rate limit counters unavailable, allowing the request: %s", exc)
        return [0 for _ in keys]


# Without a shared cache the counters are per process anyway: a plain dict does what the
# local-memory cache would, without its pickling and locking of every value.
_local_counters: dict[str, tuple[float, int]] = {}
_local_lock = threading.Lock()


def _increment_local(keys: list[tuple[str, int]]) -> list[int]:
    now = time.monotonic()
    counts = []
    with _local_lock:
        if len(_local_counters) > 50_000:
            for stale in [k for k, (expires, _) in _local_counters.items() if expires <= now]:
                del _local_counters[stale]
        for key, ttl in keys:
            expires, count = _local_counters.get(key, (0.0, 0))
            if expires <= now:
                expires, count = now + ttl, 0
            _local_counters[key] = (expires, count + 1)
            counts.append(count + 1)
    return counts


def reset_local_counters() -> None:
    with _local_lock:
        _local_counters.clear()


def client_ident(request: Request) -> str:
    """The client's address as DRF's throttles see it: REMOTE_ADDR, or with NUM_PROXIES set,
    the address that many trusted proxies put in X-Forwarded-For (never a client's own claim)."""
    return BaseThrottle().get_ident(request)


def record_auth_failure(request: Request) -> int | None:
    """Count a failed API key for this client; the seconds to wait once it failed too often."""
    if not settings.RATE_LIMIT_ENABLED:
        return None
    rate = parse_rate(settings.RATE_LIMIT_AUTH_FAILURES)
    if rate is None:
        return None
    limit, window = rate
    now = time.time()
    key = f"rl:af:{client_ident(request)}:{window}:{int(now // window)}"
    (count,) = increment_counters([(key, window + 1)])
    return math.ceil(window - (now % window)) if count > limit else None


def end_user_identity(request: Request, principal: ApiPrincipal) -> str | None:
    """(tenant, oauth_provider, external_id) from the body, hashed to a short key; None if absent."""
    data = request.data
    if not isinstance(data, dict):
        return None
    provider, external_id = data.get("oauth_provider"), data.get("external_id")
    if not isinstance(provider, str) or not isinstance(external_id, str):
        return None
    tenant = principal.tenant_id or data.get("tenant_id") or ""
    tenant = tenant.strip() if isinstance(tenant, str) else ""
    # Stripped as the serializer strips them: " alice" is alice's account, and her counter.
    raw = f"{tenant}\x1f{provider.strip()}\x1f{external_id.strip()}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


class BillingRateThrottle(BaseThrottle):
    """Both scopes in one class, so both counters move in one round trip."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if not settings.RATE_LIMIT_ENABLED:
            return True
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            return True  # unauthenticated: answered 401 by the permission check
        now = time.time()
        scopes: list[tuple[str, int, int]] = []  # (cache key, limit, window seconds)
        key_rate = parse_rate(settings.RATE_LIMIT_PER_KEY)
        if key_rate is not None:
            # Without keys, the client address (X-Forwarded-For only through NUM_PROXIES trusted hops).
            caller = client_ident(request) if principal is OPEN_ACCESS else principal.prefix
            limit, window = key_rate
            scopes.append((f"rl:k:{caller}:{window}:{int(now // window)}", limit, window))
        user_rate = parse_rate(settings.RATE_LIMIT_PER_USER)
        if user_rate is not None:
            user = end_user_identity(request, principal)
            if user is not None:
                limit, window = user_rate
                scopes.append((f"rl:u:{user}:{window}:{int(now // window)}", limit, window))
        if not scopes:
            return True
        counts = increment_counters([(key, window + 1) for key, _, window in scopes])
        waits = [
            window - (now % window) for (_, limit, window), count in zip(scopes, counts, strict=True) if count > limit
        ]
        if waits:
            self._wait = max(waits)
            return False
        return True

    def wait(self) -> float | None:
        # DRF puts this in Retry-After (rounded up to whole seconds).
        return math.ceil(self._wait) if self._wait is not None else None

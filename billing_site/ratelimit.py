"""Fixed-window rate-limit counters that cost no Redis round trip per request.

Generic: it knows nothing of apps (accounts.throttling builds the scopes from the caller).

Each process counts hits in its own memory and sends them to Redis in batches: one
script call (INCRBY per touched key, EXPIRE when new) once RATE_LIMIT_BATCH hits are pending or
RATE_LIMIT_FLUSH_MS passed, whichever comes first. Redis answers every key's total, so the
process learns what the others counted. A hit is allowed while (last total seen from Redis
+ this process's unsent hits) stays within the limit.

Accuracy (per scope and window, with P processes: all gunicorn workers of all instances
sharing one Redis, B = RATE_LIMIT_BATCH):
- a single process is exact: it counts every one of its own hits at once;
- at least `limit` requests are always admitted (a process only refuses once it has seen
  more than `limit` hits, all real);
- at most `limit + 2·P·B` are admitted: Redis lags the true count by at most P·B unsent
  hits, and a process whose last view was stale admits at most B more before it flushes
  and sees the total. E.g. 4 workers, B = 20: up to 160 over a limit.
Set RATE_LIMIT_BATCH=1 for a round trip per request and the limit to within P.
A fixed window lets a burst of up to twice the rate straddle a window edge; for abuse
protection that is the usual trade. Failed-key counting flushes on every hit (exact).

Without REDIS_URL the counters live in each process only: with N gunicorn workers a client
may get up to N times the rate. Production sets REDIS_URL.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Past windows' entries are dropped once this many keys are held.
_MAX_KEYS = 50_000
_encode_batch = json.JSONEncoder(separators=(",", ":")).encode
# One command per batch (EVALSHA) instead of an INCRBY and an EXPIRE per key: packing the
# commands was most of a batch's CPU. A window's key gets its expiry when it is created.
# The batch travels as one JSON argument, [[key, hits, ttl], ...], and the totals come back
# as one JSON array: redis-py packs every argument and parses every reply element in Python,
# which was most of a batch's CPU (docs/performance.md). The keys are therefore not declared
# in KEYS: fine on one Redis (or
# Sentinel), which is what the service supports; a Cluster could not run a batch over
# several hash slots either way.
_ADD_HITS = """
local batch = cjson.decode(ARGV[1])
local totals = {}
for i, entry in ipairs(batch) do
  local key, hits = entry[1], entry[2]
  local total = redis.call('INCRBY', key, hits)
  if total == hits then redis.call('EXPIRE', key, entry[3]) end
  totals[i] = total
end
return cjson.encode(totals)
"""


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


class Limits(NamedTuple):
    """The RATE_LIMIT_* settings, parsed: None where a scope (or all of them) is off."""

    per_key: tuple[int, int] | None
    per_user: tuple[int, int] | None
    auth_failures: tuple[int, int] | None
    batch: int
    flush_seconds: float


@lru_cache(maxsize=1)
def limits() -> Limits:
    """Read once, and again after a RATE_LIMIT_* setting changed (override_settings), rather
    than through Django's settings object several times a request."""
    on = settings.RATE_LIMIT_ENABLED
    return Limits(
        per_key=parse_rate(settings.RATE_LIMIT_PER_KEY) if on else None,
        per_user=parse_rate(settings.RATE_LIMIT_PER_USER) if on else None,
        auth_failures=parse_rate(settings.RATE_LIMIT_AUTH_FAILURES) if on else None,
        batch=settings.RATE_LIMIT_BATCH,
        flush_seconds=settings.RATE_LIMIT_FLUSH_MS / 1000,
    )


@receiver(setting_changed)
def _limits_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("RATE_LIMIT_"):
        limits.cache_clear()


def default_redis_client() -> Any | None:
    """The raw Redis client behind the default cache, when it is django-redis; else None."""
    from django_redis.cache import RedisCache

    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return backend.client.get_client(write=True)
    return None


class WindowCounters:
    """Hit counters per (key, ttl), kept in this process and flushed to Redis in batches."""

    def __init__(
        self,
        *,
        client: Callable[[], Any | None] = default_redis_client,
        batch: Callable[[], int] = lambda: limits().batch,
        flush_seconds: Callable[[], float] = lambda: limits().flush_seconds,
    ) -> None:
        self._client, self._batch, self._flush_seconds = client, batch, flush_seconds
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}  # key -> (total last seen in Redis, expires)
        self._pending: dict[str, tuple[int, int]] = {}  # key -> (unsent hits, ttl)
        self._pending_hits = 0
        self._next_flush = 0.0
        self._scripts: dict[int, Any] = {}

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self._pending.clear()
            self._pending_hits = 0
            self._next_flush = 0.0

    def hit(self, keys: Sequence[tuple[str, int]], *, flush: bool = False) -> list[int]:
        """Count one hit on each (key, ttl seconds); return each key's best-known count.

        A Redis failure allows the request (the unsent hits are dropped, loudly): a cache
        outage must not stop billing, and the database still protects every balance.
        Without Redis a batch is added to this process's own totals: this process is the
        whole truth, and its counts are exact (seen + unsent) at every hit.
        """
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > _MAX_KEYS:
                self._seen = {k: v for k, v in self._seen.items() if v[1] > now}
            pending = self._pending
            for key, ttl in keys:
                hits, _ = pending.get(key, (0, ttl))
                pending[key] = (hits + 1, ttl)
            self._pending_hits += 1
            due = flush or self._pending_hits >= self._batch() or now >= self._next_flush
            if not due:  # the usual case: answered under this one lock
                return [self._seen_count(key, now) + pending[key][0] for key, _ in keys]
            sending, self._pending, self._pending_hits = pending, {}, 0
            self._next_flush = now + self._flush_seconds()
        # The client is looked up only for a batch, not per request.
        client = self._client()
        if client is None:
            self._add_locally(sending, now)
        else:
            self._send(client, sending, now)
        with self._lock:
            return [self._seen_count(key, now) + self._pending.get(key, (0, 0))[0] for key, _ in keys]

    def _add_locally(self, sending: dict[str, tuple[int, int]], now: float) -> None:
        with self._lock:
            for key, (hits, ttl) in sending.items():
                seen = self._seen.get(key)
                if seen is not None and seen[1] > now:
                    self._seen[key] = (seen[0] + hits, seen[1])
                else:
                    self._seen[key] = (hits, now + ttl)

    def _seen_count(self, key: str, now: float) -> int:
        seen = self._seen.get(key)
        return seen[0] if seen is not None and seen[1] > now else 0

    def _send(self, client: Any, sending: dict[str, tuple[int, int]], now: float) -> None:
        try:
            script = self._scripts.get(id(client))
            if script is None:
                script = self._scripts[id(client)] = client.register_script(_ADD_HITS)
            batch = _encode_batch([[key, hits, ttl] for key, (hits, ttl) in sending.items()])
            totals = json.loads(script(args=[batch]))
        except Exception as exc:  # fail open, loudly
            logger.warning("rate limit counters unavailable, allowing requests: %s", exc)
            return
        with self._lock:
            for key, total in zip(sending, totals, strict=True):
                self._seen[key] = (int(total), now + sending[key][1])


counters = WindowCounters()


def reset_local_counters() -> None:
    counters.reset()


def client_ident(request: Request) -> str:
    """The client's address as DRF's throttles see it: REMOTE_ADDR, or with NUM_PROXIES set,
    the address that many trusted proxies put in X-Forwarded-For (never a client's own claim)."""
    return BaseThrottle().get_ident(request)


def window_key(scope: str, ident: str, window: int, now: float) -> str:
    return f"rl:{scope}:{ident}:{window}:{int(now // window)}"


def seconds_left(window: int, now: float) -> int:
    return math.ceil(window - (now % window))


def record_auth_failure(request: Request) -> int | None:
    """Count a failed API key for this client; the seconds to wait once it failed too often."""
    rate = limits().auth_failures
    if rate is None:
        return None
    limit, window = rate
    now = time.time()
    key = window_key("af", client_ident(request), window, now)
    (count,) = counters.hit([(key, window + 1)], flush=True)  # rare: exact across processes
    return seconds_left(window, now) if count > limit else None

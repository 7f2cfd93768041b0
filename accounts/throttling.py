"""DRF throttle for the API: per API key and per end user, on billing_site.ratelimit's counters.

Scopes (DESIGN: RATE_LIMIT_PER_KEY, RATE_LIMIT_PER_USER):
- per API key: the key's prefix (with auth switched off, the client address);
- per end user: (tenant, oauth_provider, external_id) from the request body, the same
  identity the account is found by. Requests without one (GETs) count per key only.
Both scopes are one class so both counters move together (one batch, see ratelimit).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.auth import OPEN_ACCESS, ApiPrincipal, UserPrincipal
from billing_site.ratelimit import client_ident, counters, limits, window_key


def end_user_identity(request: Request, principal: ApiPrincipal | UserPrincipal) -> str | None:
    """(tenant, oauth_provider, external_id) from the body, hashed to a short key; None if absent."""
    if isinstance(principal, UserPrincipal):  # a user token's identity is the token's, not the body's
        raw = f"\x1f{principal.provider}\x1f{principal.sub}".encode("utf-8", "surrogatepass")
        return hashlib.blake2b(raw, digest_size=12).hexdigest()
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
    """429 + Retry-After once the caller's key or end user is over its rate."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        rates = limits()
        key_rate, user_rate = rates.per_key, rates.per_user
        if key_rate is None and user_rate is None:
            return True
        principal = request.auth
        if not isinstance(principal, ApiPrincipal | UserPrincipal):
            return True  # unauthenticated: answered 401 by the permission check
        now = time.time()
        scopes: list[tuple[str, int, int]] = []  # (counter key, limit, window seconds)
        if key_rate is not None:
            # Without keys, the client address (X-Forwarded-For only through NUM_PROXIES trusted hops);
            # a user token counts as its own caller, at the per-key rate.
            if isinstance(principal, UserPrincipal):
                caller = principal.actor
            elif principal is OPEN_ACCESS:
                caller = client_ident(request)
            else:
                caller = principal.prefix
            limit, window = key_rate
            scopes.append((window_key("k", caller, window, now), limit, window))
        if user_rate is not None:
            user = end_user_identity(request, principal)
            if user is not None:
                limit, window = user_rate
                scopes.append((window_key("u", user, window, now), limit, window))
        if not scopes:
            return True
        counts = counters.hit([(key, window + 1) for key, _, window in scopes])
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

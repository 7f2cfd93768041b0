"""Daily free uses: BILLING_DAILY_FREE_USES per account per UTC day, reset lazily (no cron).

An account row keeps the count of the UTC day it was last topped up on. On a later day
that count is stale: the account has the full allowance, which a check shows without
writing anything, and which the day's first charge writes under the account lock as one
`daily_free_uses_granted` ledger entry (delta: the allowance minus yesterday's leftover, so
the ledger still sums to the row). Concurrent first charges of a day serialize on the lock:
the first writes the top-up, the others find the row already on today.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.utils import timezone

from accounts.models import Account


def utc_today() -> datetime.date:
    return timezone.now().astimezone(datetime.UTC).date()


def daily_free_uses_limit() -> int:
    return settings.BILLING_DAILY_FREE_USES


def daily_free_uses_on(account: Account, day: datetime.date) -> int:
    """The daily free uses `account` has on `day`: the full allowance on a day not yet topped up."""
    limit = daily_free_uses_limit()
    if limit <= 0:
        return 0
    if account.daily_free_uses_day != day:
        return limit
    return min(account.daily_free_uses_remaining, limit)


def daily_top_up_delta(account: Account, day: datetime.date) -> int | None:
    """The delta that brings the row to `day`'s allowance, or None when the row is on `day` (or it is off)."""
    limit = daily_free_uses_limit()
    if limit <= 0 or account.daily_free_uses_day == day:
        return None
    return limit - account.daily_free_uses_remaining

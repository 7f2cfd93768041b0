"""Reads for the dashboard and `billing_report`: uses, purchases, revenue, conversion per day."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import Account
from charges.models import Charge
from purchases.models import Purchase, PurchaseStatus

# A purchase counts as revenue once paid; a later refund does not unmake the sale (it is
# reported in its own column).
PAID_STATUSES = (PurchaseStatus.SUCCEEDED, PurchaseStatus.REFUNDED, PurchaseStatus.PARTIALLY_REFUNDED)


@dataclass
class Stats:
    """One day's (or a period's) numbers. Money is in the currency's minor units."""

    day: str
    uses: int = 0
    free_uses: int = 0
    paid_uses: int = 0
    purchases: int = 0
    revenue_minor: int = 0
    refunded_minor: int = 0
    new_accounts: int = 0
    new_accounts_paid: int = 0
    conversion_percent: float = field(default=0.0)

    def finish(self) -> Stats:
        self.paid_uses = self.uses - self.free_uses
        self.conversion_percent = (
            round(100 * self.new_accounts_paid / self.new_accounts, 1) if self.new_accounts else 0.0
        )
        return self

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


FIELDS = [f for f in Stats.__dataclass_fields__]


def day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def paid_purchases() -> QuerySet[Purchase]:
    return Purchase.objects.filter(status__in=PAID_STATUSES).annotate(paid_at=Coalesce("credited_at", "created_at"))


def daily_stats(*, start: dt.date, end: dt.date) -> list[Stats]:
    """One row per day from start to end (both included), days without activity as zeros."""
    if end < start:
        raise ValueError("end is before start")
    lower, upper = day_bounds(start, end)
    days = {
        start + dt.timedelta(days=i): Stats(day=(start + dt.timedelta(days=i)).isoformat())
        for i in range((end - start).days + 1)
    }

    charges = (
        Charge.objects.filter(created_at__gte=lower, created_at__lt=upper)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(uses=Count("id"), free=Count("id", filter=Q(paid_with_free_use=True)))
    )
    for row in charges:
        days[row["day"]].uses, days[row["day"]].free_uses = row["uses"], row["free"]

    purchases = (
        paid_purchases()
        .filter(paid_at__gte=lower, paid_at__lt=upper)
        .annotate(day=TruncDate("paid_at"))
        .values("day")
        .annotate(n=Count("id"), revenue=Sum("amount_minor"), refunded=Sum("refunded_minor"))
    )
    for row in purchases:
        stats = days[row["day"]]
        stats.purchases, stats.revenue_minor, stats.refunded_minor = row["n"], row["revenue"] or 0, row["refunded"] or 0

    accounts = (
        Account.objects.filter(created_at__gte=lower, created_at__lt=upper)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"), paid=Count("id", filter=Q(has_paid=True)))
    )
    for row in accounts:
        days[row["day"]].new_accounts, days[row["day"]].new_accounts_paid = row["n"], row["paid"]

    return [days[d].finish() for d in sorted(days)]


def total_of(rows: list[Stats], *, label: str = "total") -> Stats:
    total = Stats(day=label)
    for row in rows:
        for name in (
            "uses",
            "free_uses",
            "purchases",
            "revenue_minor",
            "refunded_minor",
            "new_accounts",
            "new_accounts_paid",
        ):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return total.finish()


@dataclass(frozen=True)
class Overview:
    accounts: int
    paying_accounts: int
    conversion_percent: float
    active_users: dict[str, int]
    uses: dict[str, int]
    revenue_minor_30d: int


def overview(*, now: dt.datetime | None = None) -> Overview:
    """The dashboard's headline numbers: today (since midnight UTC), last 7 and 30 days."""
    now = now or timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    since = {"today": today, "7d": now - dt.timedelta(days=7), "30d": now - dt.timedelta(days=30)}
    charge_counts = Charge.objects.aggregate(
        **{f"uses_{k}": Count("id", filter=Q(created_at__gte=v)) for k, v in since.items()},
        **{f"active_{k}": Count("account", distinct=True, filter=Q(created_at__gte=v)) for k, v in since.items()},
    )
    account_counts = Account.objects.aggregate(total=Count("id"), paying=Count("id", filter=Q(has_paid=True)))
    revenue = paid_purchases().filter(paid_at__gte=since["30d"]).aggregate(total=Sum("amount_minor"))["total"] or 0
    total = account_counts["total"]
    return Overview(
        accounts=total,
        paying_accounts=account_counts["paying"],
        conversion_percent=round(100 * account_counts["paying"] / total, 1) if total else 0.0,
        active_users={k: charge_counts[f"active_{k}"] for k in since},
        uses={k: charge_counts[f"uses_{k}"] for k in since},
        revenue_minor_30d=revenue,
    )

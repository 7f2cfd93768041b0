"""The staff dashboard at /admin/dashboard/: headline numbers and 30 days of charts."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from backoffice import margins, reports
from backoffice.charts import Series, bar_chart

DASHBOARD_DAYS = 30
MODELS_CHARTED = 12
# The dashboard sums accounts, charges and purchases (revenue): it is for staff who may
# already see each of those records, so it reveals nothing they could not look up.
DASHBOARD_PERMISSIONS = ("accounts.view_account", "charges.view_charge", "purchases.view_purchase")


def dashboard(request: HttpRequest) -> HttpResponse:
    """Staff only (admin_view in urls.py), and only those holding DASHBOARD_PERMISSIONS."""
    if not request.user.has_perms(DASHBOARD_PERMISSIONS):
        raise PermissionDenied
    today = timezone.now().date()
    days = reports.daily_stats(start=today - dt.timedelta(days=DASHBOARD_DAYS - 1), end=today)
    labels = [d.day[5:] for d in days]  # MM-DD
    currency = settings.BILLING_CURRENCY
    panels = [
        (
            "Uses per day",
            [Series("free uses", [d.free_uses for d in days]), Series("paid uses", [d.paid_uses for d in days])],
        ),
        (f"Revenue per day ({currency} minor units)", [Series("revenue", [d.revenue_minor for d in days])]),
        ("Purchases per day", [Series("purchases", [d.purchases for d in days])]),
        (
            "New accounts per day",
            [
                Series("still free", [d.new_accounts - d.new_accounts_paid for d in days]),
                Series("converted to paid", [d.new_accounts_paid for d in days]),
            ],
        ),
    ]
    charts = [(title, bar_chart(title=title, labels=labels, series=series)) for title, series in panels]
    margin = margins.margin_report(start=today - dt.timedelta(days=DASHBOARD_DAYS - 1), end=today)
    margin_charts = [
        (
            f"LLM provider cost and margin per day, stacked: revenue of the uses charged ({currency} minor units)",
            bar_chart(
                title="Provider cost and revenue per day",
                labels=labels,
                series=[
                    Series("provider cost", [float(d.cost_cents) for d in margin.days]),
                    Series("margin", [max(float(d.margin_minor), 0) for d in margin.days]),
                ],
                precision=2,
            ),
        ),
        (
            f"Provider cost per model, last {DASHBOARD_DAYS} days ({currency} minor units)",
            bar_chart(
                title="Provider cost per model",
                labels=[m.key for m in margin.models[:MODELS_CHARTED]],
                series=[Series("provider cost", [float(m.cost_cents) for m in margin.models[:MODELS_CHARTED]])],
                precision=2,
            ),
        ),
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "overview": reports.overview(),
        "charts": charts + margin_charts,
        "margin": margin,
        "pack_price_minor": settings.BILLING_PACK_PRICE_MINOR,
        "pack_uses": settings.BILLING_PACK_USES,
        "period": reports.total_of(days, label=f"last {DASHBOARD_DAYS} days"),
        "currency": currency,
    }
    return TemplateResponse(request, "backoffice/dashboard.html", context)

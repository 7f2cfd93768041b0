"""The back office's read-only view of refunds and disputes (one row per Stripe Refund or Dispute)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from billing_site.admin_base import ReadOnlyAdmin
from purchases.models import Reversal


@admin.register(Reversal)
class ReversalAdmin(ReadOnlyAdmin):
    """Written only by the webhook's reversal service: viewable, never added, edited or deleted here."""

    list_display = [
        "stripe_id",
        "kind",
        "stripe_status",
        "amount_minor",
        "claimed_minor",
        "debited_minor",
        "returned_minor",
        "shortfall_minor",
        "purchase",
        "updated_at",
    ]
    list_filter = ["kind", "stripe_status", "takes_funds"]
    search_fields = ["=stripe_id", "=stripe_charge_id", "=purchase__stripe_payment_intent_id"]
    list_select_related = ["purchase"]
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Reversal._meta.fields]

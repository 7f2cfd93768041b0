"""Admin list filters about purchases, for the account list (registered in the back office's admin)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from purchases.selectors import accounts_with_chargeback_shortfall


class ChargebackShortfallFilter(admin.SimpleListFilter):
    """Accounts a chargeback found with the credit already spent (the fraud signal)."""

    title = "chargeback shortfall"
    parameter_name = "chargeback_shortfall"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Chargeback left a shortfall"), ("no", "No chargeback shortfall")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        flagged = accounts_with_chargeback_shortfall().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=flagged)
        if self.value() == "no":
            return queryset.exclude(pk__in=flagged)
        return queryset

"""Usage records in the back office: read-only (they are the proxy's reports, not ours to edit)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest

from billing_site.admin_base import ReadOnlyAdmin
from usage.models import UsageRecord
from usage.selectors import attach_totals


class UsageChangeList(ChangeList):
    """The page's totals (computed from the posts) in two queries, not two per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        attach_totals(self.result_list)


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "account",
        "interaction_id",
        "total_llm_calls",
        "total_prompt_tokens",
        "total_completion_tokens",
        "actual_cost_cents",
        "error_count",
        "fallback_count",
    ]
    readonly_fields = [*list_display[1:], "duration_ms", "models_used", "updated_at"]
    list_filter = ["created_at"]
    search_fields = ["=interaction_id", "account__external_id", "account__id__exact"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return UsageChangeList

"""Usage records in the back office: read-only (they are the proxy's reports, not ours to edit)."""

from __future__ import annotations

from django.contrib import admin

from billing_site.admin_base import ReadOnlyAdmin
from usage.models import UsageRecord


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
    list_filter = ["created_at"]
    search_fields = ["=interaction_id", "account__external_id", "account__id__exact"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    show_full_result_count = False

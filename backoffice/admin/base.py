"""What every back-office admin shares: links to related rows and the read-only base."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ledger.models import LedgerEntry

GRANT_PERMISSION = "accounts.grant_credits"
SUSPEND_PERMISSION = "accounts.suspend_account"


def admin_link(obj: Any, text: object | None = None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that only services write: viewable, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AccountRecordAdmin(ReadOnlyAdmin):
    """A read-only record of one account (`account_link`); charges and purchases also list
    the ledger entries they made (`ledger_links`)."""

    @admin.display(description="account", ordering="account")
    def account_link(self, obj: Any) -> str:
        return admin_link(obj.account)

    @admin.display(description="ledger entries")
    def ledger_links(self, obj: Any) -> str:
        return format_html_join_links(obj.ledger_entries.all())


def format_html_join_links(entries: QuerySet[LedgerEntry]) -> str:
    return (
        format_html_join(
            ", ",
            '<a href="{}">#{} {}</a>',
            ((reverse("admin:ledger_ledgerentry_change", args=[e.pk]), e.pk, e.kind) for e in entries),
        )
        or "-"
    )

"""What every back-office admin shares: links to related rows and the read-only base."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html_join

from billing_site.admin_base import ReadOnlyAdmin, admin_link
from ledger.models import LedgerEntry

__all__ = ["GRANT_PERMISSION", "SUSPEND_PERMISSION", "AccountRecordAdmin", "ReadOnlyAdmin", "admin_link"]

GRANT_PERMISSION = "accounts.grant_credits"
SUSPEND_PERMISSION = "accounts.suspend_account"


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

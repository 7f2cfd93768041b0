"""Ledger entries, charges and purchases: records only services write, shown read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from backoffice.admin.base import AccountRecordAdmin, admin_link
from charges.models import Charge
from ledger.models import LedgerEntry
from purchases.models import Purchase


@admin.register(LedgerEntry)
class LedgerEntryAdmin(AccountRecordAdmin):
    list_display = [
        "id",
        "created_at",
        "account_link",
        "kind",
        "balance_delta_minor",
        "free_uses_delta",
        "balance_after_minor",
        "free_uses_after",
        "reference",
        "actor",
        "reason",
    ]
    list_filter = ["kind", "created_at", "currency"]
    search_fields = [
        "id__exact",
        "account__external_id",
        "account__email",
        "account__id__exact",
        "actor",
        "reason",
        "=idempotency_key",
        "=charge__idempotency_key",
        "=purchase__stripe_payment_intent_id",
    ]
    list_select_related = ["account", "charge", "purchase"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [
        "id",
        "account_link",
        "kind",
        "balance_delta_minor",
        "free_uses_delta",
        "balance_after_minor",
        "free_uses_after",
        "currency",
        "charge_link",
        "purchase_link",
        "actor",
        "reason",
        "idempotency_key",
        "details",
        "created_at",
    ]
    fields = readonly_fields

    @admin.display(description="charge")
    def charge_link(self, obj: LedgerEntry) -> str:
        return admin_link(obj.charge, obj.charge_id)

    @admin.display(description="purchase")
    def purchase_link(self, obj: LedgerEntry) -> str:
        return admin_link(obj.purchase, obj.purchase_id)

    @admin.display(description="charge / purchase")
    def reference(self, obj: LedgerEntry) -> str:
        if obj.charge_id:
            return admin_link(obj.charge, "charge")
        if obj.purchase_id:
            return admin_link(obj.purchase, "purchase")
        return "-"


@admin.register(Charge)
class ChargeAdmin(AccountRecordAdmin):
    list_display = [
        "id",
        "created_at",
        "account_link",
        "amount_minor",
        "currency",
        "paid_with_free_use",
        "debited_minor",
        "balance_after_minor",
        "idempotency_key",
        "actor",
    ]
    list_filter = ["paid_with_free_use", "currency", "created_at"]
    search_fields = [
        "id__exact",
        "=idempotency_key",
        "account__external_id",
        "account__email",
        "account__id__exact",
        "description",
    ]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [
        "id",
        "account_link",
        "idempotency_key",
        "amount_minor",
        "currency",
        "description",
        "metadata",
        "paid_with_free_use",
        "debited_minor",
        "balance_after_minor",
        "free_uses_after",
        "actor",
        "created_at",
        "ledger_links",
    ]
    fields = readonly_fields


# The back office's read-only view wins over any other registration of Purchase.
if admin.site.is_registered(Purchase):
    admin.site.unregister(Purchase)


@admin.register(Purchase)
class PurchaseAdmin(AccountRecordAdmin):
    list_display = [
        "id",
        "created_at",
        "account_link",
        "status",
        "amount_minor",
        "currency",
        "uses",
        "refunded_minor",
        "stripe_payment_intent_id",
        "credited_at",
    ]
    list_filter = ["status", "currency", "created_at"]
    search_fields = [
        "id__exact",
        "=stripe_payment_intent_id",
        "account__external_id",
        "account__email",
        "customer_email",
    ]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    exclude = ["client_secret"]  # a payment secret has no business on a support screen

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Purchase._meta.fields if f.name != "client_secret"] + ["account_link", "ledger_links"]

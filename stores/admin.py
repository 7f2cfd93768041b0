"""Store purchases in the back office: products are edited here; purchases are records the
services write (read-only), also shown on the account's page (backoffice.admin.accounts)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from billing_site.admin_base import ReadOnlyAdmin, admin_link
from stores.models import StoreNotification, StoreProduct, StorePurchase

PURCHASE_FIELDS = [
    "store",
    "state",
    "product",
    "uses_credited",
    "credit_minor",
    "consume_state",
    "order_id",
    "voided_at",
    "reversed_minor",
    "shortfall_minor",
    "reversed_uses",
    "shortfall_uses",
    "created_at",
]


@admin.register(StoreProduct)
class StoreProductAdmin(admin.ModelAdmin):
    list_display = ["product_id", "store", "grants", "uses", "tool", "active", "updated_at"]
    list_filter = ["store", "grants", "active"]
    search_fields = ["product_id"]
    fields = ["store", "product_id", "grants", "uses", "tool", "active"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Purchases name their product: its store and id never change once it exists.
        return ["store", "product_id"] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: purchases refer to it


@admin.register(StorePurchase)
class StorePurchaseAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "account_link", *PURCHASE_FIELDS]
    list_filter = ["store", "state", "consume_state", "product"]
    search_fields = ["order_id", "=purchase_token", "account__external_id", "account__email", "=account__id"]
    list_select_related = ["account", "product"]
    readonly_fields = [
        "id",
        "account_link",
        "purchase_token",
        "package_name",
        *PURCHASE_FIELDS,
        "consume_attempts",
        "consume_error",
        "consumed_at",
        "void_source",
        "store_revoked",
        "news_signed_at",
        "credit_entry",
        "reversal_entry",
        "actor",
        "updated_at",
    ]
    fields = readonly_fields
    show_full_result_count = False

    @admin.display(description="account")
    def account_link(self, obj: StorePurchase) -> str:
        return admin_link(obj.account)


@admin.register(StoreNotification)
class StoreNotificationAdmin(ReadOnlyAdmin):
    list_display = ["message_id", "store", "kind", "outcome", "received_at"]
    list_filter = ["store", "kind", "outcome"]
    search_fields = ["=message_id", "=purchase_token"]
    fields = ["store", "message_id", "kind", "purchase_token", "outcome", "received_at"]
    readonly_fields = fields


class StorePurchaseInline(admin.TabularInline):
    """An account's store purchases and their state, on its change page."""

    model = StorePurchase
    fk_name = "account"
    fields = ["purchase_link", *PURCHASE_FIELDS]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at"]
    verbose_name_plural = "store purchases"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("stores.view_storepurchase")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("product")

    @admin.display(description="purchase")
    def purchase_link(self, obj: StorePurchase) -> str:
        return admin_link(obj, obj.order_id or str(obj.pk)[:8])

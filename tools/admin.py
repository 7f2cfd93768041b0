"""Tool credits in the back office: products are edited here (with the usual model
permissions), allowances and tool charges are read-only, and free uses are granted through
a confirmation form behind `tools.grant_tool_allowance` that calls the grant service."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.models import Account
from billing_site.admin_base import ReadOnlyAdmin, admin_link
from billing_site.errors import BillingError
from tools.forms import GrantToolUsesForm, GrantToolUsesToAccountForm
from tools.models import ToolAllowance, ToolCharge, ToolProduct
from tools.services import tool_allowance_grant

GRANT_PERMISSION = "tools.grant_tool_allowance"


@admin.register(ToolProduct)
class ToolProductAdmin(admin.ModelAdmin):
    list_display = ["product_type", "name", "price", "free_initial", "free_daily_topup", "free_cap", "active"]
    list_filter = ["active"]
    search_fields = ["product_type", "name"]
    fields = ["product_type", "name", "price_minor", "free_initial", "free_daily_topup", "free_cap", "active"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Allowances and ledger details name the product by its type: it never changes.
        return ["product_type"] if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: allowances and charges refer to it

    @admin.display(description="price (minor)")
    def price(self, obj: ToolProduct) -> str:
        return str(obj.price_minor) if obj.price_minor is not None else f"{obj.effective_price_minor} (one use)"


@admin.register(ToolAllowance)
class ToolAllowanceAdmin(ReadOnlyAdmin):
    list_display = ["account_link", "product", "free_remaining", "topped_up_on", "total_uses", "updated_at"]
    list_filter = ["product"]
    search_fields = ["account__external_id", "account__email", "account__id__exact"]
    list_select_related = ["account", "product"]
    readonly_fields = ["account_link", "product", "free_remaining", "topped_up_on", "total_uses", "created_at"]
    fields = readonly_fields
    show_full_result_count = False
    change_list_template = "admin/tools/toolallowance/change_list.html"
    actions = ["grant_free_uses"]

    def has_grant_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(GRANT_PERMISSION)

    @admin.display(description="account", ordering="account")
    def account_link(self, obj: ToolAllowance) -> str:
        return admin_link(obj.account)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "may_grant": self.has_grant_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[Any]:
        grant = path("grant/", self.admin_site.admin_view(self.grant_view), name="tools_toolallowance_grant")
        return [grant, *super().get_urls()]

    @admin.action(description="Grant free uses …", permissions=["grant"])
    def grant_free_uses(self, request: HttpRequest, queryset: QuerySet[ToolAllowance]) -> HttpResponse:
        # The intermediate-page pattern: the selection travels as a hidden input of the POST.
        return self._render(request, GrantToolUsesForm(), list(queryset))

    def grant_view(self, request: HttpRequest) -> HttpResponse:
        """Grant free uses to the selected allowances (ids) or to one account and product."""
        if not self.has_grant_permission(request):
            raise PermissionDenied
        # ASCII digits only (str.isdigit() takes "²", which int() refuses: a 500).
        ids = [i for i in request.POST.get("ids", "").split(",") if re.fullmatch(r"[0-9]{1,18}", i)]
        selected = list(ToolAllowance.objects.filter(pk__in=ids).select_related("account", "product"))
        form_class = GrantToolUsesForm if selected else GrantToolUsesToAccountForm
        if request.method != "POST" or "confirm" not in request.POST:
            return self._render(request, form_class(initial=request.GET.dict()), selected)
        form = form_class(request.POST)
        if not form.is_valid():
            return self._render(request, form, selected)
        data = form.cleaned_data
        if selected:
            targets = [(a.account, a.product) for a in selected]
        else:
            account = Account.objects.filter(pk=data["account_id"]).first()
            if account is None:
                form.add_error("account_id", "No such account.")
                return self._render(request, form, selected)
            targets = [(account, data["product"])]
        actor = f"staff:{request.user.get_username()}"
        for account, product in targets:
            # One key per allowance, derived from the form's: resubmitting the page grants nothing twice.
            key = f"{data['idempotency_key']}:{account.pk}:{product.product_type}"
            try:
                entry, created = tool_allowance_grant(
                    account_id=account.pk,
                    product=product,
                    free_uses=data["free_uses"],
                    reason=data["reason"],
                    actor=actor,
                    idempotency_key=key,
                )
            except BillingError as refused:
                self.message_user(request, f"{account}: {refused.detail}", messages.ERROR)
                continue
            if not created:
                self.message_user(
                    request, f"{account}: already granted by this form; nothing changed.", messages.WARNING
                )
            else:
                self.message_user(
                    request,
                    f"{account}: granted {data['free_uses']} free {product.product_type} uses "
                    f"(ledger entry #{entry.pk}).",
                )
        return HttpResponseRedirect(reverse("admin:tools_toolallowance_changelist"))

    def _render(self, request: HttpRequest, form: Any, selected: list[ToolAllowance]) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Grant free tool uses",
            "form": form,
            "selected": selected,
            "ids": ",".join(str(a.pk) for a in selected),
        }
        return TemplateResponse(request, "admin/tools/toolallowance/grant_form.html", context)


@admin.register(ToolCharge)
class ToolChargeAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "account_link", "product", "used_free", "cost_minor", "idempotency_key"]
    list_filter = ["product", "used_free", "created_at"]
    search_fields = ["=idempotency_key", "id__exact", "account__external_id", "account__id__exact"]
    list_select_related = ["account", "product"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="account", ordering="account")
    def account_link(self, obj: ToolCharge) -> str:
        return admin_link(obj.account)

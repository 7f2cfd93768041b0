"""Accounts: search, filters, the ledger on the change page, and the confirmed actions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.models import Account
from backoffice.admin.actions import ACCOUNT_ACTIONS, AccountAction, staff_actor
from backoffice.admin.base import GRANT_PERMISSION, SUSPEND_PERMISSION
from billing_site.errors import BillingError
from charges.models import Charge
from ledger.models import LedgerEntry
from purchases.admin_filters import ChargebackShortfallFilter
from purchases.models import Purchase
from stores.admin import StorePurchaseInline

LEDGER_PAGE_SIZE = 25
RELATED_ROWS = 20


class PlanFilter(admin.SimpleListFilter):
    title = "plan"
    parameter_name = "plan"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("free", "free"), ("pro", "pro")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Account]) -> QuerySet[Account]:
        if self.value() in ("free", "pro"):
            return queryset.filter(has_paid=self.value() == "pro")
        return queryset


class TenantFilter(admin.SimpleListFilter):
    title = "tenant"
    parameter_name = "tenant"
    NONE = "__none__"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tenants = Account.objects.exclude(tenant_id="").values_list("tenant_id", flat=True).distinct()
        return [(self.NONE, "(no tenant)")] + [(t, t) for t in tenants.order_by("tenant_id")[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Account]) -> QuerySet[Account]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(tenant_id="" if value == self.NONE else value)


def _bulk_action(account_action: AccountAction) -> Any:
    """A changelist action that sends the selected accounts to the confirmation form."""
    name = account_action.name

    @admin.action(description=f"{account_action.title} …", permissions=[account_action.permission.split(".")[1]])
    def action(modeladmin: AccountAdmin, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponse:
        # Django's intermediate-page pattern: the confirmation is rendered right here, the
        # selected ids travel as a hidden input of its POST. (In a redirect's query string,
        # about 110 accounts overflowed gunicorn's 4094-byte request line.)
        return modeladmin.render_action_form(
            request, name, list(queryset.order_by("created_at")), form=account_action.form(), object_id=None
        )

    action.__name__ = f"bulk_{name.replace('-', '_')}"
    return action


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "email",
        "tenant_id",
        "status",
        "plan",
        "free_uses_remaining",
        "credits",
        "total_uses",
        "created_at",
    ]
    list_filter = ["status", PlanFilter, TenantFilter, "has_paid", ChargebackShortfallFilter, "created_at"]
    search_fields = ["external_id", "email", "=tenant_id", "id"]
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    change_form_template = "admin/accounts/account/change_form.html"
    fields = [
        "id",
        ("oauth_provider", "external_id"),
        ("tenant_id", "wa_id", "email"),
        ("status", "status_reason"),
        ("plan", "has_paid"),
        ("credits", "balance_minor", "currency"),
        ("free_uses_remaining", "total_uses"),
        ("created_at", "updated_at"),
    ]
    readonly_fields = [
        "id",
        "oauth_provider",
        "external_id",
        "tenant_id",
        "wa_id",
        "email",
        "status",
        "status_reason",
        "plan",
        "has_paid",
        "credits",
        "balance_minor",
        "currency",
        "free_uses_remaining",
        "total_uses",
        "created_at",
        "updated_at",
    ]
    actions = [_bulk_action(account_action) for account_action in ACCOUNT_ACTIONS.values()]
    inlines = [StorePurchaseInline]

    # Balances, free uses and status change only through the actions, never the form.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_grant_credits_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(GRANT_PERMISSION)

    def has_suspend_account_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(SUSPEND_PERMISSION)

    @admin.display(description="plan", ordering="has_paid")
    def plan(self, obj: Account) -> str:
        return obj.plan_name

    @admin.display(description="credits (uses)", ordering="balance_minor")
    def credits(self, obj: Account) -> int:
        return obj.credits_remaining

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path(
                "actions/<str:action>/",
                view(self.action_view),
                name="accounts_account_bulk_action",
            ),
            path(
                "<uuid:object_id>/actions/<str:action>/",
                view(self.action_view),
                name="accounts_account_action",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        extra_context = extra_context or {}
        account = self.get_object(request, object_id)
        if account is not None:
            ledger = LedgerEntry.objects.filter(account=account).select_related("charge", "purchase").order_by("-id")
            page = Paginator(ledger, LEDGER_PAGE_SIZE).get_page(request.GET.get("ledger_page"))
            extra_context.update(
                ledger_page=page,
                charges=Charge.objects.filter(account=account).order_by("-created_at")[:RELATED_ROWS],
                charge_count=Charge.objects.filter(account=account).count(),
                purchases=Purchase.objects.filter(account=account).order_by("-created_at")[:RELATED_ROWS],
                purchase_count=Purchase.objects.filter(account=account).count(),
                account_actions=[
                    (action.name, action.title)
                    for action in ACCOUNT_ACTIONS.values()
                    if request.user.has_perm(action.permission) and action.refusal(account) is None
                ],
                use_price_minor=settings.BILLING_USE_PRICE_MINOR,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def action_view(self, request: HttpRequest, action: str, object_id: Any = None) -> HttpResponse:
        """Confirmation form for one account action, for one account or a selection."""
        account_action = ACCOUNT_ACTIONS.get(action)
        if account_action is None or not request.user.has_perm(account_action.permission):
            raise PermissionDenied
        # A selection arrives only in a POST body (see _bulk_action), never in the URL.
        raw_ids = [str(object_id)] if object_id else request.POST.get("ids", "").split(",")
        try:
            accounts = list(Account.objects.filter(pk__in=[i for i in raw_ids if i]).order_by("created_at"))
        except ValidationError:  # malformed ids
            accounts = []
        if not accounts:
            self.message_user(request, "No accounts selected.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:accounts_account_changelist"))
        refusal = account_action.refusal(accounts[0]) if object_id else None
        if refusal:
            # The button is hidden, but a bookmarked or hand-made request must not get
            # through either (the services refuse too, for the bulk path and commands).
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:accounts_account_change", args=[object_id]))

        form = account_action.form(request.POST) if request.method == "POST" else account_action.form()
        if request.method == "POST" and form.is_valid():
            self._apply(request, account_action, accounts, form.cleaned_data)
            if object_id:
                return HttpResponseRedirect(reverse("admin:accounts_account_change", args=[object_id]))
            return HttpResponseRedirect(reverse("admin:accounts_account_changelist"))
        return self.render_action_form(request, action, accounts, form=form, object_id=object_id)

    def render_action_form(
        self, request: HttpRequest, action: str, accounts: list[Account], *, form: Any, object_id: Any
    ) -> HttpResponse:
        title = ACCOUNT_ACTIONS[action].title
        form_url = (
            reverse("admin:accounts_account_action", args=[object_id, action])
            if object_id
            else reverse("admin:accounts_account_bulk_action", args=[action])
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{title}: {accounts[0]}" if len(accounts) == 1 else f"{title}: {len(accounts)} accounts",
            "action": action,
            "action_title": title,
            "accounts": accounts,
            "ids": ",".join(str(a.pk) for a in accounts),
            "form": form,
            "form_url": form_url,
            "single": accounts[0] if object_id else None,
            "use_price_minor": settings.BILLING_USE_PRICE_MINOR,
        }
        return TemplateResponse(request, "admin/accounts/account/action_form.html", context)

    def _apply(
        self, request: HttpRequest, action: AccountAction, accounts: list[Account], data: dict[str, Any]
    ) -> None:
        actor = staff_actor(request.user.get_username())
        for account in accounts:
            try:
                message, level = action.run(account, actor, data)
            except BillingError as error:
                message, level = f"{account}: {error.detail}", messages.ERROR
            self.message_user(request, message, level)

"""The Django admin as a back office.

Money and status are read-only everywhere: they change only through the account actions
below, each behind a confirmation form and a permission, each calling a service that writes
a ledger entry naming the staff user. Charges, purchases and ledger entries are read-only.
"""

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
from django.utils.html import format_html, format_html_join
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from accounts.models import Account, AccountStatus, ApiKey
from backoffice import forms, services
from billing_site.errors import BillingError
from charges.models import Charge
from ledger.models import EntryKind, LedgerEntry
from purchases.admin_filters import ChargebackShortfallFilter
from purchases.models import Purchase

GRANT_PERMISSION = "accounts.grant_credits"
SUSPEND_PERMISSION = "accounts.suspend_account"
LEDGER_PAGE_SIZE = 25
RELATED_ROWS = 20

admin.site.site_header = "CIRIS Billing back office"
admin.site.site_title = "CIRIS Billing"
admin.site.index_title = "Back office"
admin.site.index_template = "backoffice/admin_index.html"

# The library's own concrete key model is unused (ours carries scopes and tenant).
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


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


# --- Accounts -------------------------------------------------------------------------


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


# name -> (form, permission, title, button label)
ACCOUNT_ACTIONS: dict[str, tuple[type, str, str]] = {
    "grant-credits": (forms.GrantCreditsForm, GRANT_PERMISSION, "Grant credits"),
    "grant-free-uses": (forms.GrantFreeUsesForm, GRANT_PERMISSION, "Grant free uses"),
    "suspend": (forms.ReasonForm, SUSPEND_PERMISSION, "Suspend"),
    "reactivate": (forms.ReasonForm, SUSPEND_PERMISSION, "Reactivate"),
    "close": (forms.ReasonForm, SUSPEND_PERMISSION, "Close account"),
}
STATUS_FOR_ACTION = {
    "suspend": AccountStatus.SUSPENDED,
    "reactivate": AccountStatus.ACTIVE,
    "close": AccountStatus.CLOSED,
}


def _bulk_action(name: str, permission: str, description: str) -> Any:
    """A changelist action that sends the selected accounts to the confirmation form."""

    @admin.action(description=description, permissions=[permission.split(".")[1]])
    def action(modeladmin: AccountAdmin, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponse:
        # Django's intermediate-page pattern: the confirmation is rendered right here, the
        # selected ids travel as a hidden input of its POST. (In a redirect's query string,
        # about 110 accounts overflowed gunicorn's 4094-byte request line.)
        form_class, _, _ = ACCOUNT_ACTIONS[name]
        return modeladmin.render_action_form(
            request, name, list(queryset.order_by("created_at")), form=form_class(), object_id=None
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
    actions = [_bulk_action(name, perm, f"{title} …") for name, (_, perm, title) in ACCOUNT_ACTIONS.items()]

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
                    (name, title)
                    for name, (_, perm, title) in ACCOUNT_ACTIONS.items()
                    if request.user.has_perm(perm) and self._action_applies(name, account)
                ],
                use_price_minor=settings.BILLING_USE_PRICE_MINOR,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _action_applies(name: str, account: Account) -> bool:
        return AccountAdmin._refusal(name, account) is None

    @staticmethod
    def _refusal(name: str, account: Account) -> str | None:
        """Why this action cannot apply to the account (the services' own words), or None."""
        target = STATUS_FOR_ACTION.get(name)
        if target is not None:
            if account.status == target:
                return f"Account {account} is already {account.status}."
            if account.status not in services.STATUS_TRANSITIONS[target]:
                return f"Account {account} is {account.status} and cannot become {target}."
        elif account.status == AccountStatus.CLOSED and name != "grant-credits":
            # grant-credits stays: an adjustment may still settle a closed account (its
            # grants are refused by account_grant).
            return f"Account {account} is closed: it gets no grants (an adjustment may still settle it)."
        return None

    def action_view(self, request: HttpRequest, action: str, object_id: Any = None) -> HttpResponse:
        """Confirmation form for one account action, for one account or a selection."""
        if action not in ACCOUNT_ACTIONS:
            raise PermissionDenied
        form_class, permission, _ = ACCOUNT_ACTIONS[action]
        if not request.user.has_perm(permission):
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
        refusal = self._refusal(action, accounts[0]) if object_id else None
        if refusal:
            # The button is hidden, but a bookmarked or hand-made request must not get
            # through either (the services refuse too, for the bulk path and commands).
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:accounts_account_change", args=[object_id]))

        form = form_class(request.POST) if request.method == "POST" else form_class()
        if request.method == "POST" and form.is_valid():
            self._apply(request, action, accounts, form.cleaned_data)
            if object_id:
                return HttpResponseRedirect(reverse("admin:accounts_account_change", args=[object_id]))
            return HttpResponseRedirect(reverse("admin:accounts_account_changelist"))
        return self.render_action_form(request, action, accounts, form=form, object_id=object_id)

    def render_action_form(
        self, request: HttpRequest, action: str, accounts: list[Account], *, form: Any, object_id: Any
    ) -> HttpResponse:
        _, _, title = ACCOUNT_ACTIONS[action]
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

    def _apply(self, request: HttpRequest, action: str, accounts: list[Account], data: dict[str, Any]) -> None:
        actor = services.staff_actor(request.user.get_username())
        for account in accounts:
            try:
                if action == "grant-credits":
                    amount = data["amount"]
                    amount_minor = services.uses_to_minor(amount) if data["unit"] == "uses" else amount
                    outcome = services.account_grant(
                        account=account,
                        actor=actor,
                        reason=data["reason"],
                        amount_minor=amount_minor,
                        kind=EntryKind(data["kind"]),
                        idempotency_key=data["idempotency_key"],
                    )
                    self._report_grant(request, account, outcome, f"{amount_minor:+d} credit minor units")
                elif action == "grant-free-uses":
                    outcome = services.account_grant(
                        account=account,
                        actor=actor,
                        reason=data["reason"],
                        free_uses=data["free_uses"],
                        idempotency_key=data["idempotency_key"],
                    )
                    self._report_grant(request, account, outcome, f"{data['free_uses']} free uses")
                else:
                    services.account_change_status(
                        account=account, status=STATUS_FOR_ACTION[action], reason=data["reason"], actor=actor
                    )
                    self.message_user(request, f"{account}: now {STATUS_FOR_ACTION[action].label.lower()}.")
            except BillingError as error:
                self.message_user(request, f"{account}: {error.detail}", messages.ERROR)

    def _report_grant(self, request: HttpRequest, account: Account, outcome: services.GrantOutcome, what: str) -> None:
        if outcome.replayed:
            self.message_user(
                request,
                f"{account}: already granted by this form (ledger entry #{outcome.entry.pk}); nothing changed.",
                messages.WARNING,
            )
        else:
            self.message_user(request, f"{account}: granted {what} (ledger entry #{outcome.entry.pk}).")


# --- Ledger, charges, purchases (read-only) --------------------------------------------


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
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

    @admin.display(description="account", ordering="account")
    def account_link(self, obj: LedgerEntry) -> str:
        return admin_link(obj.account)

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
class ChargeAdmin(ReadOnlyAdmin):
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

    @admin.display(description="account", ordering="account")
    def account_link(self, obj: Charge) -> str:
        return admin_link(obj.account)

    @admin.display(description="ledger entries")
    def ledger_links(self, obj: Charge) -> str:
        return format_html_join_links(obj.ledger_entries.all())


# The back office's read-only view wins over any other registration of Purchase.
if admin.site.is_registered(Purchase):
    admin.site.unregister(Purchase)


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
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

    @admin.display(description="account", ordering="account")
    def account_link(self, obj: Purchase) -> str:
        return admin_link(obj.account)

    @admin.display(description="ledger entries")
    def ledger_links(self, obj: Purchase) -> str:
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


# --- API keys -------------------------------------------------------------------------


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    """Create (the key is shown once, in a message), set scopes and tenant, revoke."""

    form = forms.ApiKeyForm
    list_display = ["prefix", "name", "permissions", "tenant_id", "created", "expiry_date", "_has_expired", "revoked"]
    list_filter = ["revoked", "created"]
    search_fields = ["name", "prefix", "tenant_id"]
    fields = ["name", "prefix", "scopes", "tenant_id", "expiry_date", "revoked"]
    actions = ["revoke_keys"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        # The form refuses the admin scope unless the user may grant credits themselves.
        return type(form.__name__, (form,), {"may_grant_credits": request.user.has_perm(GRANT_PERMISSION)})

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A revoked key is history: it can be viewed, not edited or revived.
        if obj is not None and obj.revoked:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revoke instead: a deleted key leaves ledger actors ("api_key:<prefix>") unexplained.
        return False

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for key in queryset.filter(revoked=False):
            key.revoked = True
            key.save(update_fields=["revoked"])  # per row, so the signal drops the cached copy
            count += 1
        self.message_user(request, f"Revoked {count} API key(s).")

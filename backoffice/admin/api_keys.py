"""API keys: created here (the key is shown once), scoped, tenant-bound, revoked."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin

from accounts.models import ApiKey
from backoffice import forms
from backoffice.admin.base import GRANT_PERMISSION


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

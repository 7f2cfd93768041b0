"""Revoked user tokens: staff revoke one here (a token or its SHA-256) and see the list."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.http import HttpRequest

from accounts.models import RevokedToken
from accounts.revocation import normalize, token_revoke


class RevokeTokenForm(forms.ModelForm):  # type: ignore[type-arg]
    token = forms.CharField(
        label="Token or its SHA-256",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="Paste the user's ID token (it is not stored, only its SHA-256) or the SHA-256 from a log.",
    )

    class Meta:
        model = RevokedToken
        fields = ["reason"]

    def clean_token(self) -> str:
        value: str = self.cleaned_data["token"]
        try:
            sha256, _ = normalize(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        if RevokedToken.objects.filter(token_sha256=sha256).exists():
            raise forms.ValidationError("This token is already revoked.")
        return value


@admin.register(RevokedToken)
class RevokedTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Add = revoke (through the same service as `manage.py revoke_token`); rows are history."""

    list_display = ["created_at", "subject", "token_sha256", "reason", "revoked_by"]
    search_fields = ["token_sha256", "subject", "reason"]
    readonly_fields = ["token_sha256", "subject", "reason", "revoked_by", "created_at"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = RevokeTokenForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["token", "reason"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: RevokedToken, form: Any, change: bool) -> None:
        staff = request.user if isinstance(request.user, User) else None
        row, _ = token_revoke(
            token_or_sha256=form.cleaned_data["token"], reason=form.cleaned_data["reason"], staff_user=staff
        )
        # The admin's "added" message and its redirect name the stored row.
        obj.pk, obj.token_sha256, obj.subject = row.pk, row.token_sha256, row.subject

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A revocation is permanent (the token expires on its own within the hour anyway).
        return False

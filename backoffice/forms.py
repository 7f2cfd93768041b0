"""Confirmation forms for the account actions in the admin."""

from __future__ import annotations

from django import forms

from accounts.models import Scope
from billing_site.admin_base import IdempotentForm
from ledger.models import EntryKind


class GrantCreditsForm(IdempotentForm):
    UNIT_USES = "uses"
    UNIT_MINOR = "minor"

    amount = forms.IntegerField(help_text="A positive whole number (negative only for an adjustment).")
    unit = forms.ChoiceField(
        choices=[(UNIT_USES, "uses"), (UNIT_MINOR, "credit minor units")], initial=UNIT_USES, widget=forms.RadioSelect
    )
    kind = forms.ChoiceField(
        choices=[
            (EntryKind.GRANT, "Grant (adds paid credit)"),
            (EntryKind.ADJUSTMENT, "Adjustment (a correction; may be negative)"),
        ],
        initial=EntryKind.GRANT,
        widget=forms.RadioSelect,
    )
    field_order = ["amount", "unit", "kind", "reason", "idempotency_key"]

    def clean(self) -> dict:
        data = super().clean() or {}
        amount = data.get("amount")
        if amount is not None:
            if amount == 0:
                self.add_error("amount", "The amount cannot be zero.")
            elif amount < 0 and data.get("kind") != EntryKind.ADJUSTMENT:
                self.add_error("amount", "Only an adjustment may be negative.")
        return data


class GrantFreeUsesForm(IdempotentForm):
    free_uses = forms.IntegerField(min_value=1, max_value=100_000)
    field_order = ["free_uses", "reason", "idempotency_key"]


class ApiKeyForm(forms.ModelForm):
    """The key's scopes as checkboxes (stored comma-separated).

    A key with the admin scope may grant credits through the API, so only staff who may
    grant credits themselves may give a key that scope (or edit a key that has it):
    otherwise API-key permissions would be a way around `accounts.grant_credits`. The
    admin sets `may_grant_credits` from the request's user; the default refuses.
    """

    may_grant_credits = False

    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.READ],
        help_text="Each scope includes the ones below it: write may also read; admin may grant credits.",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self.instance.pk:
            self.initial["scopes"] = sorted(self.instance.scopes)

    def clean_scopes(self) -> list[str]:
        scopes = self.cleaned_data["scopes"]
        if Scope.ADMIN in scopes and not self.may_grant_credits:
            raise forms.ValidationError(
                "Only staff who may grant credits (permission accounts.grant_credits) may create or edit "
                "a key with the admin scope: such a key can grant credits through the API."
            )
        return scopes

    def save(self, commit: bool = True):  # type: ignore[no-untyped-def]
        order = list(Scope.values)
        self.instance.permissions = ",".join(sorted(self.cleaned_data["scopes"], key=order.index))
        return super().save(commit=commit)

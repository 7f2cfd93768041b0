"""The admin's confirmation form for granting free tool uses."""

from __future__ import annotations

from django import forms

from billing_site.admin_base import IdempotentForm
from tools.models import ToolProduct


class GrantToolUsesForm(IdempotentForm):
    free_uses = forms.IntegerField(min_value=1, max_value=100_000, help_text="Added above the daily cap if need be.")
    field_order = ["free_uses", "reason", "idempotency_key"]


class GrantToolUsesToAccountForm(GrantToolUsesForm):
    account_id = forms.UUIDField(label="Account id")
    product = forms.ModelChoiceField(queryset=ToolProduct.objects.filter(active=True), to_field_name="product_type")
    field_order = ["account_id", "product", "free_uses", "reason", "idempotency_key"]

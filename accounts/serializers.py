"""Input and output shapes of the account, credit-check and grant endpoints."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import SkipField, empty, get_error_detail
from rest_framework.utils.serializer_helpers import BindingDict

from accounts.models import Account
from accounts.selectors import CreditStatus
from billing_site.fields import (
    MAX_AMOUNT_MINOR,
    CurrencyField,
    LenientEmailField,
    StrictIntegerField,
    amount_field,
    description_field,
    identifier,
    optional_identifier,
)
from ledger.models import EntryKind, LedgerEntry


class ShallowFieldsMixin:
    """Input serializers whose declared fields are built and bound once per class.

    DRF deep-copies every declared field for each serializer instance by re-running each
    field's __init__, then binds it (about 0.1 ms a field before; a third of a charge's
    Python time). These input serializers hold only flat scalar fields whose state is set
    at declaration and never changed by validation, and are never partial and take no
    context (the only things a field reads from the serializer it is bound to): one bound
    set per class serves every instance (bench/RESULTS.md). A subclass that overrides
    `get_fields` (nested fields) gets its own fields per instance, as DRF does.
    """

    _declared_fields: dict[str, serializers.Field]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {}
        for name, field in self._declared_fields.items():
            clone = object.__new__(type(field))  # what copy.copy does, without its protocol lookups
            clone.__dict__.update(field.__dict__)
            fields[name] = clone
        return fields

    @property
    def fields(self) -> BindingDict:
        cls = type(self)
        shared = cls.get_fields is ShallowFieldsMixin.get_fields
        owner: Any = cls if shared else self
        bound = owner.__dict__.get("_bound_fields")
        if bound is None:
            bound = BindingDict(self)
            for name, field in self.get_fields().items():
                bound[name] = field
            # Each writable field with its validate_<name> method, for to_internal_value.
            plan = [
                (name, field, getattr(cls, f"validate_{name}", None))
                for name, field in bound.fields.items()
                if not field.read_only
            ]
            flat = all(field.source_attrs == [field.source] for _, field, _ in plan)
            if shared:
                cls._bound_fields = bound  # type: ignore[attr-defined]
                cls._input_plan = plan if flat else None  # type: ignore[attr-defined]
            else:
                self.__dict__["_bound_fields"] = bound
                self.__dict__["_input_plan"] = plan if flat else None
        return bound

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """DRF's Serializer.to_internal_value for a JSON object, in one plain loop.

        The same steps in the same order with the same errors: each writable field's
        run_validation, then its validate_<name> method. What it leaves out is DRF's
        per-field overhead for the general case (the generator of writable fields, the
        validate_<name> lookup, the HTML-form check in get_value, nested sources, and a
        SkipField exception per absent optional field): a charge's validation 73 -> 40 us
        (bench/RESULTS.md). Anything but a plain dict (a QueryDict of query parameters)
        takes DRF's own path.
        """
        self.fields  # binds the fields and builds the plan (on the class, or this instance)  # noqa: B018
        plan = getattr(self, "_input_plan", None)
        if type(data) is not dict or plan is None:
            return super().to_internal_value(data)  # type: ignore[misc]
        ret: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, field, validate_method in plan:
            primitive = data.get(name, empty)
            if primitive is empty and not field.required and field.default is empty:
                continue  # DRF: get_default() raises SkipField
            try:
                value = field.run_validation(primitive)
                if validate_method is not None:
                    value = validate_method(self, value)
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            except DjangoValidationError as exc:
                errors[name] = get_error_detail(exc)
            except SkipField:
                pass
            else:
                ret[field.source] = value
        if errors:
            raise serializers.ValidationError(errors)
        return ret

    @classmethod
    def validate_body(cls, data: Any) -> dict[str, Any]:
        """`cls(data=data)`, `is_valid(raise_exception=True)`, `validated_data`, on one
        instance per class: making a serializer is 66k instructions of a charge's 240k of
        validation (bench/NOTES.md), and an instance of these serializers holds nothing
        that validation changes (their fields are already shared, above, and they are never
        partial and take no context). Data that fails is validated again the usual way, so
        every 422 is DRF's own, to the letter."""
        shared = cls.__dict__.get("_shared_instance")
        if shared is None:
            shared = cls()
            cls._shared_instance = shared  # type: ignore[attr-defined]
        try:
            return shared.run_validation(data)  # type: ignore[attr-defined, no-any-return]
        except (serializers.ValidationError, DjangoValidationError, SkipField):
            pass
        serializer = cls(data=data)  # type: ignore[call-arg]
        serializer.is_valid(raise_exception=True)  # type: ignore[attr-defined]
        return serializer.validated_data  # type: ignore[attr-defined, no-any-return]

    def run_validators(self, value: Any) -> None:
        # DRF first merges the read-only fields' defaults into the value, for the
        # serializer's own validators: with none declared there is nothing to run.
        if self.validators:
            super().run_validators(value)  # type: ignore[misc]


class IdentityIn(ShallowFieldsMixin, serializers.Serializer):
    """The guide's identity block. Fields the guide does not list are ignored."""

    oauth_provider = identifier(help_text='OAuth provider, e.g. "oauth:google".')
    external_id = identifier(help_text="The user's email or OAuth id.")
    wa_id = optional_identifier(help_text="WebAgent id; recorded, not part of identity.")
    tenant_id = optional_identifier(help_text="Tenant (B2B); part of identity.")
    customer_email = LenientEmailField(help_text="Recorded on the account when it is a valid email.")


class CreditCheckIn(IdentityIn):
    amount_minor = amount_field(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="Price of the coming use, if not one use's price; has_credit answers for it.",
    )
    # The body's "context" field (DRF moves declared fields off the class; the stubs do not know).
    context = serializers.JSONField(  # type: ignore[assignment]
        required=False, allow_null=True, help_text="Free-form context; ignored."
    )


class CreditCheckOut(serializers.Serializer):
    has_credit = serializers.BooleanField()
    credits_remaining = serializers.IntegerField(help_text="Paid balance in uses (0 when suspended or closed).")
    free_uses_remaining = serializers.IntegerField(help_text="0 when suspended or closed.")
    daily_free_uses_remaining = serializers.IntegerField(
        help_text="Today's (UTC) daily free uses left, spent first (0 when off, suspended or closed)."
    )
    daily_free_uses_limit = serializers.IntegerField(help_text="Daily free uses per UTC day (0 when off).")
    total_uses = serializers.IntegerField(source="account.total_uses")
    plan_name = serializers.CharField(source="account.plan_name")
    reason = serializers.CharField(allow_null=True)
    purchase_required = serializers.BooleanField()
    purchase_price_minor = serializers.IntegerField(allow_null=True)
    purchase_uses = serializers.IntegerField(allow_null=True)
    account_id = serializers.UUIDField(source="account.id")
    balance_minor = serializers.IntegerField(source="account.balance_minor", help_text="The stored paid balance.")


def credit_check_out(status: CreditStatus) -> dict[str, Any]:
    """CreditCheckOut's data, built directly (the hottest endpoint; tests/test_response_shapes.py
    keeps the two identical)."""
    account = status.account
    return {
        "has_credit": status.has_credit,
        "credits_remaining": status.credits_remaining,
        "free_uses_remaining": status.free_uses_remaining,
        "daily_free_uses_remaining": status.daily_free_uses_remaining,
        "daily_free_uses_limit": status.daily_free_uses_limit,
        "total_uses": account.total_uses,
        "plan_name": account.plan_name,
        "reason": status.reason,
        "purchase_required": status.purchase_required,
        "purchase_price_minor": status.purchase_price_minor,
        "purchase_uses": status.purchase_uses,
        "account_id": str(account.id),
        "balance_minor": account.balance_minor,
    }


class NullIfBlankCharField(serializers.CharField):
    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return value or None


class AccountOut(serializers.ModelSerializer):
    account_id = serializers.UUIDField(source="id")
    wa_id = NullIfBlankCharField()
    tenant_id = NullIfBlankCharField()
    plan_name = serializers.CharField()
    credits_remaining = serializers.IntegerField()

    class Meta:
        model = Account
        fields = [
            "account_id",
            "oauth_provider",
            "external_id",
            "wa_id",
            "tenant_id",
            "status",
            "plan_name",
            "free_uses_remaining",
            "credits_remaining",
            "balance_minor",
            "currency",
            "total_uses",
            "created_at",
        ]


class LedgerEntryOut(serializers.ModelSerializer):
    entry_id = serializers.IntegerField(source="id")
    account_id = serializers.UUIDField()
    charge_id = serializers.UUIDField(allow_null=True)
    purchase_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "entry_id",
            "account_id",
            "kind",
            "balance_delta_minor",
            "free_uses_delta",
            "balance_after_minor",
            "free_uses_after",
            "daily_free_uses_delta",
            "daily_free_uses_after",
            "currency",
            "charge_id",
            "purchase_id",
            "actor",
            "reason",
            "created_at",
        ]


class CreditGrantIn(IdentityIn):
    amount_minor = amount_field(
        min_value=-MAX_AMOUNT_MINOR, required=False, default=0, help_text="Paid credit in minor units."
    )
    free_uses = StrictIntegerField(min_value=-(10**6), max_value=10**6, required=False, default=0)
    currency = CurrencyField()
    kind = serializers.ChoiceField(
        choices=[EntryKind.GRANT.value, EntryKind.ADJUSTMENT.value],
        default=EntryKind.GRANT.value,
        help_text="grant (positive only) or adjustment (either sign, never below zero).",
    )
    description = description_field()
    reason = description_field(required=True, allow_blank=False, allow_null=False)
    idempotency_key = identifier()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("amount_minor") and not attrs.get("free_uses"):
            raise serializers.ValidationError("Give a non-zero amount_minor and/or free_uses.")
        if attrs["kind"] == EntryKind.GRANT and (attrs["amount_minor"] < 0 or attrs["free_uses"] < 0):
            raise serializers.ValidationError("A grant must be positive; use kind=adjustment to take credit back.")
        return attrs

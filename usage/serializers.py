"""Input and output shapes of the usage and transactions-by-identity endpoints."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.serializers import IdentityIn
from billing_site.fields import StrictIntegerField, TextField, identifier, optional_identifier
from ledger.models import EntryKind, LedgerEntry
from usage.models import COST_DECIMAL_PLACES, COST_MAX_DIGITS, COUNT_FIELDS, MAX_MODELS, UsageRecord
from usage.services import UsagePost

MAX_COUNT = 10**12
MAX_COST_CENTS = Decimal(10**12)


def count_field(help_text: str) -> StrictIntegerField:
    return StrictIntegerField(min_value=0, max_value=MAX_COUNT, required=False, default=0, help_text=help_text)


@extend_schema_field(OpenApiTypes.NUMBER)
class CostCentsField(serializers.Field):
    """A JSON number of cents (0.0421 or 4), kept exact as a Decimal; never a string or bool."""

    default_error_messages = {
        "invalid": "Must be a JSON number of cents, e.g. 0.0421.",
        "negative": "Must not be negative.",
        "too_large": f"Must be at most {MAX_COST_CENTS} cents.",
        "too_precise": f"At most {COST_DECIMAL_PLACES} decimal places.",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float | Decimal):
            self.fail("invalid")
        try:
            # A float only reaches here without the Decimal parser: its shortest repr is what was sent.
            value = Decimal(repr(data)) if isinstance(data, float) else Decimal(data)
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if value < 0:
            self.fail("negative")
        if value > MAX_COST_CENTS:
            self.fail("too_large")
        if -value.as_tuple().exponent > COST_DECIMAL_PLACES:  # type: ignore[operator]
            self.fail("too_precise")
        return value

    def to_representation(self, value: Decimal) -> Decimal:
        return value


@extend_schema_field(
    {"type": "array", "items": {"type": "string", "maxLength": 255}, "maxItems": MAX_MODELS, "nullable": True}
)
class ModelsUsedField(serializers.Field):
    """The models an interaction used: a list of at most MAX_MODELS strings (null: none).

    Its items are checked by one shared TextField rather than a ListField's child, which is
    bound to its parent and so would make the serializer copy all its fields on every post.
    """

    default_error_messages = {
        "not_a_list": 'Expected a list of items but got type "{input_type}".',
        "max_length": f"Ensure this field has no more than {MAX_MODELS} elements.",
    }
    item = TextField(max_length=255)

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        if len(data) > MAX_MODELS:
            self.fail("max_length")
        errors, models = {}, []
        for index, value in enumerate(data):
            try:
                models.append(self.item.run_validation(value))
            except serializers.ValidationError as exc:
                errors[index] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return models

    def to_representation(self, value: list[str]) -> list[str]:
        return value


class UsageIn(IdentityIn):
    """The LLM proxy's usage post: one LLM call (total_llm_calls 1) or an interaction's totals so far."""

    interaction_id = identifier(help_text="The proxy's interaction id; its charge has key litellm:{interaction_id}.")
    total_llm_calls = count_field("LLM calls: 1 for a per-call post, the count so far for an aggregated post.")
    total_prompt_tokens = count_field("Prompt tokens.")
    total_completion_tokens = count_field("Completion tokens.")
    models_used = ModelsUsedField(required=False, allow_null=True, default=list)
    actual_cost_cents = CostCentsField(
        required=False, default=Decimal(0), help_text="Provider cost in cents, sub-cent fractions kept exactly."
    )
    duration_ms = count_field("Duration in milliseconds.")
    error_count = count_field("Failed LLM calls.")
    fallback_count = count_field("Calls served by a fallback model.")

    def post(self) -> UsagePost:
        data = self.validated_data
        raw_cost = self.initial_data.get("actual_cost_cents", 0) if isinstance(self.initial_data, dict) else 0
        return UsagePost(
            interaction_id=data["interaction_id"],
            models_used=tuple(data.get("models_used") or ()),
            actual_cost_cents=data["actual_cost_cents"],
            cost_is_integer=isinstance(raw_cost, int) and not isinstance(raw_cost, bool),
            **{name: data[name] for name in COUNT_FIELDS},
        )


class UsageLoggedOut(serializers.Serializer):
    logged = serializers.BooleanField()
    usage_log_id = serializers.IntegerField()


class UsageOut(serializers.ModelSerializer):
    """A record with its totals (computed from its posts: see usage.selectors.attach_totals)."""

    usage_log_id = serializers.IntegerField(source="id")
    charge_id = serializers.UUIDField(source="linked_charge_id", allow_null=True, read_only=True)
    total_llm_calls = serializers.IntegerField(read_only=True)
    total_prompt_tokens = serializers.IntegerField(read_only=True)
    total_completion_tokens = serializers.IntegerField(read_only=True)
    models_used = serializers.ListField(child=serializers.CharField(), read_only=True)
    actual_cost_cents = serializers.DecimalField(
        max_digits=COST_MAX_DIGITS,
        decimal_places=COST_DECIMAL_PLACES,
        coerce_to_string=False,
        normalize_output=True,
        read_only=True,
    )
    duration_ms = serializers.IntegerField(read_only=True)
    error_count = serializers.IntegerField(read_only=True)
    fallback_count = serializers.IntegerField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True, help_text="The interaction's latest post.")

    class Meta:
        model = UsageRecord
        fields = [
            "usage_log_id",
            "interaction_id",
            "total_llm_calls",
            "total_prompt_tokens",
            "total_completion_tokens",
            "models_used",
            "actual_cost_cents",
            "duration_ms",
            "error_count",
            "fallback_count",
            "charge_id",
            "created_at",
            "updated_at",
        ]


class TransactionsQuery(serializers.Serializer):
    """The agent's history query (query string); wa_id is accepted and ignored."""

    oauth_provider = identifier()
    external_id = identifier()
    tenant_id = optional_identifier()
    wa_id = optional_identifier()
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=100_000, default=0)


CHARGE_KINDS = (EntryKind.CHARGE, EntryKind.TOOL_CHARGE)


def transaction_out(entry: LedgerEntry) -> dict[str, Any]:
    """One ledger entry as the agent's TransactionItem: type charge or credit, signed amount.

    The agent shows this to the end user, so the description is the charge's own, a grant's
    user-facing description, or the kind's label: never the staff's internal reason.
    """
    charge, purchase = entry.charge, entry.purchase
    if charge is not None:
        description = charge.description
        metadata: dict[str, Any] | None = charge.metadata or {}
        external = charge.idempotency_key
    else:
        description = (entry.details or {}).get("description")
        metadata = None
        external = purchase.stripe_payment_intent_id if purchase is not None else None
    return {
        "transaction_id": str(entry.id),
        "type": "charge" if entry.kind in CHARGE_KINDS else "credit",
        "amount_minor": entry.balance_delta_minor,
        "currency": entry.currency,
        "description": description if isinstance(description, str) and description else entry.get_kind_display(),
        "created_at": entry.created_at.isoformat().replace("+00:00", "Z"),
        "balance_after": entry.balance_after_minor,
        "transaction_type": entry.kind,
        "external_transaction_id": external,
        "metadata": metadata,
        "free_uses_delta": entry.free_uses_delta,
    }


class TransactionOut(serializers.Serializer):
    transaction_id = serializers.CharField(help_text="The ledger entry's id.")
    type = serializers.ChoiceField(choices=["charge", "credit"])
    amount_minor = serializers.IntegerField(help_text="Change of the paid balance; negative for debits.")
    currency = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    balance_after = serializers.IntegerField(help_text="Paid balance after it, in minor units.")
    transaction_type = serializers.CharField(help_text="The ledger entry's kind: charge, purchase, grant, refund, ...")
    external_transaction_id = serializers.CharField(
        allow_null=True, help_text="The charge's idempotency key, or the purchase's Stripe PaymentIntent id."
    )
    metadata = serializers.DictField(allow_null=True, help_text="A charge's metadata; null for credits.")
    free_uses_delta = serializers.IntegerField(help_text="Change of the free uses (a free use is -1).")


class TransactionsOut(serializers.Serializer):
    transactions = TransactionOut(many=True)
    total_count = serializers.IntegerField()
    has_more = serializers.BooleanField()

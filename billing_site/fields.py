"""Input rules, written once, so that a value the database cannot store, or money sent as
the wrong JSON type, is a 422 and never a 500.

Two forms of the same rules: DRF fields for the cold endpoints, and pydantic types for the
hot ones (the credit check and the charge), whose DRF validation cost as much as the rest of
the request. Both read the limits and the checks below. DRF's CharField refuses NUL bytes and
lone surrogates, which PostgreSQL text cannot hold; pydantic refuses lone surrogates and
`refuse_nul` the NUL bytes.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from pydantic import AfterValidator, Field, PlainValidator, StringConstraints
from pydantic_core import PydanticCustomError
from rest_framework import serializers

# The input limits, written once (each matches the column that stores the value).
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8
MAX_AMOUNT_MINOR = 10**12
IDENTIFIER_MAX_LENGTH = 255  # oauth_provider, external_id, wa_id, tenant_id, idempotency keys
DESCRIPTION_MAX_LENGTH = 1000  # charge descriptions, grant descriptions and reasons
EMAIL_MAX_LENGTH = 254
CURRENCY_LENGTH = 3


def is_storable_text(value: str) -> bool:
    """PostgreSQL text holds no NUL and no lone UTF-16 surrogates."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TextField(serializers.CharField):
    """A JSON string: a number is refused, not quietly turned into text (an external_id of
    12345 is a client bug worth hearing about)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: "100", 100.0 and true are refused, not quietly converted (money)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def clean_email(data: Any) -> str:
    """An optional email: clients send it with every call, so a bad one is dropped ("")."""
    if not isinstance(data, str) or len(data) > EMAIL_MAX_LENGTH or not is_storable_text(data):
        return ""
    try:
        validate_email(data.strip())
    except DjangoValidationError:
        return ""
    return data.strip()


class LenientEmailField(serializers.CharField):
    """An optional email: clients send it with every call, so a bad one is dropped, not a 422."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        return clean_email(data)


UNSUPPORTED_CURRENCY = "Unsupported currency {value}: this service bills in {currency}."


class CurrencyField(TextField):
    """The service's one billing currency (BILLING_CURRENCY), any case; another is a 422."""

    default_error_messages = {"unsupported": UNSUPPORTED_CURRENCY}

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", CURRENCY_LENGTH)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).upper()
        if value != settings.BILLING_CURRENCY:
            self.fail("unsupported", value=value, currency=settings.BILLING_CURRENCY)
        return value


def _json_value_problem(value: Any, depth: int) -> str | None:
    if depth > MAX_METADATA_DEPTH:
        return f"Nested deeper than {MAX_METADATA_DEPTH} levels."
    if isinstance(value, str):
        if not is_storable_text(value):
            return "Strings must be valid UTF-8 without NUL characters."
    elif isinstance(value, float):
        if not math.isfinite(value):
            return "Numbers must be finite."
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = _json_value_problem(key, depth + 1) or _json_value_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = _json_value_problem(item, depth + 1)
            if problem:
                return problem
    return None


def json_object_problem(value: Any) -> str | None:
    """Why `value` is not a JSON object that jsonb stores as sent and small enough to keep
    with every charge, or None when it is."""
    if not isinstance(value, dict):
        return "Must be a JSON object."
    return _json_value_problem(value, 0) or (
        f"Must be at most {MAX_METADATA_BYTES} bytes as JSON." if len(json.dumps(value)) > MAX_METADATA_BYTES else None
    )


def small_json_object(value: Any) -> None:
    problem = json_object_problem(value)
    if problem:
        raise serializers.ValidationError(problem)


class MetadataField(serializers.JSONField):
    """The caller's own context for a charge: an optional, small JSON object."""

    default_validators = [small_json_object]

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)


def identifier(**kwargs: Any) -> TextField:
    """A required identity string (oauth_provider, external_id, idempotency_key)."""
    return TextField(max_length=IDENTIFIER_MAX_LENGTH, **kwargs)


def optional_identifier(**kwargs: Any) -> TextField:
    return TextField(max_length=IDENTIFIER_MAX_LENGTH, required=False, allow_null=True, allow_blank=True, **kwargs)


def description_field(**kwargs: Any) -> TextField:
    """Free text kept with a charge or grant (a description or a reason)."""
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_blank", True)
    kwargs.setdefault("allow_null", True)
    return TextField(max_length=DESCRIPTION_MAX_LENGTH, **kwargs)


def amount_field(**kwargs: Any) -> StrictIntegerField:
    """An amount of credit minor units, bounded well inside the BigIntegerField column."""
    return StrictIntegerField(max_value=MAX_AMOUNT_MINOR, **kwargs)


# --- The same rules as pydantic types (the credit check and the charge) -----------------
# Models using them set `strict=True`, so text must be a JSON string and money a JSON
# integer; billing_site.api.validated turns pydantic's errors into DRF's wording.


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("null_characters", "Null characters are not allowed.")
    return value


def _billing_currency(value: str) -> str:
    value = value.upper()
    if value != settings.BILLING_CURRENCY:
        raise PydanticCustomError(
            "unsupported",
            "{reason}",
            {"reason": UNSUPPORTED_CURRENCY.format(value=value, currency=settings.BILLING_CURRENCY)},
        )
    return value


def _metadata(value: Any) -> Any:
    problem = None if value is None else json_object_problem(value)
    if problem:
        raise PydanticCustomError("invalid_metadata", "{reason}", {"reason": problem})
    return value


# Text is trimmed, as DRF's CharField trims it; min_length=1 is DRF's "may not be blank".
Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=IDENTIFIER_MAX_LENGTH),
    AfterValidator(refuse_nul),
]
OptionalIdentifier = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=IDENTIFIER_MAX_LENGTH), AfterValidator(refuse_nul)
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX_LENGTH), AfterValidator(refuse_nul)
]
# No length limit: only the billing currency passes, and the refusal names the one sent.
Currency = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_billing_currency)]
Amount = Annotated[int, Field(ge=1, le=MAX_AMOUNT_MINOR)]
Metadata = Annotated[Any, AfterValidator(_metadata)]
LenientEmail = Annotated[str, PlainValidator(clean_email, json_schema_input_type=str | None)]

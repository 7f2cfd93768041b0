"""Input fields for the rules DRF's own fields do not have, so that a value the database
cannot store, or money sent as the wrong JSON type, is a 422 and never a 500.

Each is an ordinary DRF field: `to_internal_value` for the JSON type it accepts, validators
for everything else. DRF's CharField already refuses NUL bytes and lone surrogates, which
PostgreSQL text cannot hold.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
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


class LenientEmailField(serializers.CharField):
    """An optional email: clients send it with every call, so a bad one is dropped, not a 422."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or len(data) > EMAIL_MAX_LENGTH or not is_storable_text(data):
            return ""
        try:
            validate_email(data.strip())
        except DjangoValidationError:
            return ""
        return data.strip()


class CurrencyField(TextField):
    """The service's one billing currency (BILLING_CURRENCY), any case; another is a 422."""

    default_error_messages = {"unsupported": "Unsupported currency {value}: this service bills in {currency}."}

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", CURRENCY_LENGTH)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).upper()
        if value != settings.BILLING_CURRENCY:
            self.fail("unsupported", value=value, currency=settings.BILLING_CURRENCY)
        return value


def _check_json_value(value: Any, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise serializers.ValidationError(f"Nested deeper than {MAX_METADATA_DEPTH} levels.")
    if isinstance(value, str):
        if not is_storable_text(value):
            raise serializers.ValidationError("Strings must be valid UTF-8 without NUL characters.")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise serializers.ValidationError("Numbers must be finite.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_value(key, depth + 1)
            _check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)


def small_json_object(value: Any) -> None:
    """A JSON object that jsonb stores as sent, and small enough to keep with every charge."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    _check_json_value(value, 0)
    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise serializers.ValidationError(f"Must be at most {MAX_METADATA_BYTES} bytes as JSON.")


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

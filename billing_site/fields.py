"""Input fields that keep anything the database cannot store out of it (a 422, not a 500)."""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinLengthValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
    validate_email,
)
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

# The input limits, written once (each matches the column that stores the value).
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8
MAX_AMOUNT_MINOR = 10**12
IDENTIFIER_MAX_LENGTH = 255  # oauth_provider, external_id, wa_id, tenant_id, idempotency keys
DESCRIPTION_MAX_LENGTH = 1000  # charge descriptions, grant descriptions and reasons
EMAIL_MAX_LENGTH = 254
CURRENCY_LENGTH = 3


def _is_limit_validator(validator: Any, kind: type, limit: Any) -> bool:
    """One of the length or value validators DRF's field added for its own max/min."""
    return limit is not None and type(validator) is kind and validator.limit_value == limit


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
    """A JSON string (no silent number-to-text coercion) that PostgreSQL can store."""

    default_error_messages = {"unstorable": "Must be valid UTF-8 text without NUL characters."}

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # to_internal_value refuses NUL and lone surrogates before any validator runs, so
        # CharField's two validators for them could never fire: dropped.
        self.validators = [
            v
            for v in self.validators
            if not isinstance(v, ProhibitNullCharactersValidator | ProhibitSurrogateCharactersValidator)
        ]
        # Its length validators stay (the OpenAPI schema reads its maxLength from them) but
        # run_validation checks the lengths itself, with the same messages and codes: each
        # field of each request called them (bench/NOTES.md).
        self._other_validators = any(
            not _is_limit_validator(v, MaxLengthValidator, self.max_length)
            and not _is_limit_validator(v, MinLengthValidator, self.min_length)
            for v in self.validators
        )

    def run_validation(self, data: Any = empty) -> Any:
        """CharField.run_validation for a string, without its two layers of calls: the same
        checks, errors and order (blank, then to_internal_value, then the validators). Each
        identity field of every check and charge runs this (1.8 -> 1.0 us a field).
        Anything else (absent, null, not a string) takes DRF's own path."""
        if type(data) is not str or self.read_only:
            return super().run_validation(data)
        if data == "" or (self.trim_whitespace and data.strip() == ""):
            if not self.allow_blank:
                self.fail("blank")
            return ""
        value = self.to_internal_value(data)
        if self.max_length is not None and len(value) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        if self.min_length is not None and len(value) < self.min_length:
            self.fail("min_length", min_length=self.min_length)
        if self._other_validators:
            self.run_validators(value)
        return value

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        value = str(data)  # CharField.to_internal_value, for a string
        if self.trim_whitespace:
            value = value.strip()
        if not is_storable_text(value):
            self.fail("unstorable")
        return value


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


class MetadataField(serializers.JSONField):
    """A small JSON object of the caller's context, stored as given."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        _check_json_value(data, 0)
        if len(json.dumps(data)) > MAX_METADATA_BYTES:
            raise serializers.ValidationError(f"Must be at most {MAX_METADATA_BYTES} bytes as JSON.")
        return data


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


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: "100", 100.0 and true are refused, not quietly converted (money)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # Its limits are checked in run_validation, with IntegerField's messages and codes;
        # the validators stay for the schema (as TextField's).
        self._other_validators = any(
            not _is_limit_validator(v, MaxValueValidator, self.max_value)
            and not _is_limit_validator(v, MinValueValidator, self.min_value)
            for v in self.validators
        )

    def run_validation(self, data: Any = empty) -> Any:
        """For a JSON integer: IntegerField's checks in their order, without its regex over
        str(data) (an int is already itself) or its validators' calls. Anything else
        (absent, null, any other type) takes DRF's own path, which refuses it."""
        if type(data) is not int or self.read_only:
            return super().run_validation(data)  # a default, None, or to_internal_value's refusal
        if self.max_value is not None and data > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        if self.min_value is not None and data < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        if self._other_validators:
            self.run_validators(data)
        return data

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def amount_field(**kwargs: Any) -> StrictIntegerField:
    return StrictIntegerField(max_value=MAX_AMOUNT_MINOR, **kwargs)

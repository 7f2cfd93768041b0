"""Our faster input validation answers exactly as DRF's own path does, value for value.

TextField and StrictIntegerField check their lengths and limits themselves, and the input
serializers validate on one shared instance (billing_site.fields, accounts.serializers):
each is compared here with DRF's own code path, for good and bad values alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers
from rest_framework.fields import SkipField, empty

from accounts.serializers import CreditCheckIn, CreditGrantIn, IdentityIn
from billing_site.api import validated
from billing_site.fields import StrictIntegerField, TextField
from charges.serializers import ChargeIn
from purchases.serializers import PurchaseIn
from tools.serializers import ToolChargeIn

INPUTS = [CreditCheckIn, IdentityIn, ChargeIn, CreditGrantIn, PurchaseIn, ToolChargeIn]

TEXTS: list[Any] = ["", " ", "a", " usd ", "USD", "usd", "EUR", "x" * 3, "x" * 4, "x" * 64, "x" * 65]
TEXTS += ["x" * 254, "x" * 255, "x" * 256, " " + "x" * 255, "x" * 1000, "x" * 1001, "nul\x00", "\ud800"]
TEXTS += [None, empty, 7, 1.5, True, ["a"], {"a": 1}]
INTEGERS: list[Any] = [0, 1, -1, 100, 10**6, 10**6 + 1, -(10**6), -(10**6) - 1, 10**12, 10**12 + 1]
INTEGERS += [-(10**12), -(10**12) - 1, 500, 1000, 1001, None, empty, True, False, 1.0, "100", "", [1]]


def outcome(run: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", run(value)
    except serializers.ValidationError as exc:
        return "error", exc.detail
    except SkipField:
        return "skip", None


def fields_of(kind: type, drf_field: type, values: list[Any]) -> list[tuple[str, serializers.Field, Any, list[Any]]]:
    return [
        (f"{serializer.__name__}.{name}", field, drf_field.run_validation, values)
        for serializer in INPUTS
        for name, field in serializer().fields.items()
        if isinstance(field, kind)
    ]


@pytest.mark.parametrize(
    ("name", "field", "drf_run_validation", "values"),
    [
        *fields_of(TextField, serializers.CharField, TEXTS),
        *fields_of(StrictIntegerField, serializers.IntegerField, INTEGERS),
    ],
)
def test_a_field_answers_as_drfs_own_path_does(name, field, drf_run_validation, values):
    for value in values:
        ours = outcome(field.run_validation, value)
        drf = outcome(lambda v: drf_run_validation(field, v), value)
        assert ours == drf, (name, value)


BODIES: list[Any] = [
    None,
    [],
    "text",
    {},
    {"oauth_provider": "oauth:google"},
    {"oauth_provider": "oauth:google", "external_id": "a@example.com"},
    {"oauth_provider": " oauth:google ", "external_id": "a@example.com", "tenant_id": None, "wa_id": "w-1"},
    {"oauth_provider": "x" * 256, "external_id": "", "customer_email": "not an email"},
    {"oauth_provider": "oauth:google", "external_id": "a@example.com", "amount_minor": 100, "currency": "usd"},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": 0, "currency": "EUR", "metadata": []},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": "100", "idempotency_key": "k"},
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": 10**13, "idempotency_key": "k" * 300},
    {
        "oauth_provider": "oauth:google",
        "external_id": "a",
        "amount_minor": 100,
        "currency": "USD",
        "description": "Agent interaction - datum",
        "idempotency_key": "msg-1",
        "metadata": {"message_id": "msg-1"},
        "unknown": "ignored",
    },
    {"oauth_provider": "oauth:google", "external_id": "a", "amount_minor": -5, "reason": "r", "idempotency_key": "g"},
    {"oauth_provider": "oauth:google", "external_id": "a", "free_uses": 3, "reason": "", "idempotency_key": "g"},
    {"oauth_provider": "oauth:google", "external_id": "a", "quantity": 0, "return_url": "https://example.com"},
    {"oauth_provider": "oauth:google", "external_id": "a", "product_type": "web_search", "idempotency_key": "t"},
]


class Body:
    auth = None  # an API-key caller (a user token's identity would replace the body's)

    def __init__(self, data: Any):
        self.data = data


@pytest.mark.parametrize("serializer", INPUTS, ids=lambda s: s.__name__)
def test_a_body_validated_on_the_shared_instance_is_what_is_valid_gives(serializer):
    for data in BODIES:
        fresh = serializer(data=data)
        expected = ("ok", fresh.validated_data) if fresh.is_valid() else ("error", fresh.errors)
        got = outcome(lambda d: validated(serializer, Body(d)), data)
        assert got == expected, (serializer.__name__, data)

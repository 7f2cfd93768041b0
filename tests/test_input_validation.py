"""The input rules DRF's own fields do not have (billing_site/fields.py), as a client meets them:
text must be a JSON string PostgreSQL can store, money a JSON integer, metadata a small JSON
object; a bad optional email is dropped; a 422 says which field and changes nothing."""

from __future__ import annotations

import json

import pytest

from accounts.models import Account
from charges.models import Charge
from tests.conftest import charge_body

pytestmark = pytest.mark.django_db

CHECK = "/v1/billing/credits/check"
CHARGES = "/v1/billing/charges"


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_a_422_names_the_field_and_the_reason(api, user):
    response = api.post(CHECK, {"oauth_provider": "oauth:google"}, format="json")

    assert response.status_code == 422
    assert response.json() == {
        "detail": "external_id: This field is required.",
        "code": "validation_error",
        "errors": {"external_id": ["This field is required."]},
    }


@pytest.mark.parametrize("value", [12345, 1.5, True, ["a"], {"id": "a"}])
def test_an_identity_that_is_not_a_json_string_is_422_not_text(api, user, value):
    response = api.post(CHECK, {**user, "external_id": value}, format="json")

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["external_id"]
    assert Account.objects.count() == 0


@pytest.mark.parametrize("field", ["oauth_provider", "external_id", "wa_id", "tenant_id"])
@pytest.mark.parametrize("value", ["a\u0000b", "a\ud800b"])
def test_text_postgresql_cannot_store_is_422_on_every_identity_field(api, user, field, value):
    raw = json.dumps({**user, field: value})  # a lone surrogate travels as the JSON escape \ud800

    response = api.post(CHECK, data=raw, content_type="application/json")

    assert response.status_code == 422
    assert list(response.json()["errors"]) == [field]
    assert Account.objects.count() == 0


def test_identity_text_is_trimmed(api, user):
    api.post(CHECK, {"oauth_provider": " oauth:google ", "external_id": f" {user['external_id']}\n"}, format="json")

    assert Account.objects.get().external_id == user["external_id"]


@pytest.mark.parametrize("value", [True, 1.0, "3", None])
def test_granted_free_uses_must_be_a_json_integer(admin_api, user, value):
    body = {**user, "free_uses": value, "reason": "support", "idempotency_key": "g-1"}

    response = admin_api.post("/v1/billing/credits", body, format="json")

    assert response.status_code == 422
    assert "free_uses" in response.json()["errors"]


def test_the_currency_is_read_in_any_case(api, user):
    response = api.post(CHARGES, {**charge_body(user, "k"), "currency": "usd"}, format="json")

    assert response.status_code == 201
    assert response.json()["currency"] == "USD"


def test_another_currency_is_422_naming_the_one_billed(api, user):
    response = api.post(CHARGES, {**charge_body(user, "k"), "currency": "eur"}, format="json")

    assert response.status_code == 422
    assert response.json()["errors"]["currency"] == ["Unsupported currency EUR: this service bills in USD."]


def test_metadata_nested_eight_deep_is_kept_as_sent(api, user):
    metadata = nested(8)

    response = api.post(CHARGES, charge_body(user, "k", metadata=metadata), format="json")

    assert response.status_code == 201
    assert response.json()["metadata"] == metadata
    assert Charge.objects.get().metadata == metadata


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (nested(9), "Nested deeper than 8 levels."),
        ({"blob": "x" * 17_000}, "Must be at most 16384 bytes as JSON."),
        ({"a\u0000": 1}, "Strings must be valid UTF-8 without NUL characters."),
        ([{"message_id": "m"}], "Must be a JSON object."),
        ("message m", "Must be a JSON object."),
    ],
)
def test_metadata_that_is_too_deep_too_big_or_not_an_object_is_422(api, user, metadata, reason):
    response = api.post(CHARGES, charge_body(user, "k", metadata=metadata), format="json")

    assert response.status_code == 422
    assert response.json()["errors"] == {"metadata": [reason]}
    assert Charge.objects.count() == 0


def test_the_optional_fields_may_be_null(api, user):
    body = {
        **charge_body(user, "k"),
        "wa_id": None,
        "tenant_id": None,
        "customer_email": None,
        "description": None,
        "metadata": None,
        "context": None,
    }

    assert api.post(CHECK, body, format="json").status_code == 200
    response = api.post(CHARGES, body, format="json")

    assert response.status_code == 201
    assert (response.json()["description"], response.json()["metadata"]) == ("", {})


@pytest.mark.parametrize("email", ["not an email", "a@b@c", "x" * 300 + "@example.com", 42, "nul\u0000@example.com"])
def test_a_bad_customer_email_is_dropped_not_refused(api, user, email):
    response = api.post(CHECK, {**user, "customer_email": email}, format="json")

    assert response.status_code == 200
    assert Account.objects.get().email == ""


def test_a_good_customer_email_is_recorded(api, user):
    api.post(CHECK, {**user, "customer_email": " ada@example.com "}, format="json")

    assert Account.objects.get().email == "ada@example.com"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"external_id": "   "}, "external_id", "This field may not be blank."),
        ({"external_id": None}, "external_id", "This field may not be null."),
        ({"idempotency_key": "k" * 256}, "idempotency_key", "Ensure this field has no more than 255 characters."),
        ({"amount_minor": "100"}, "amount_minor", "A valid integer is required."),
        ({"amount_minor": 0}, "amount_minor", "Ensure this value is greater than or equal to 1."),
        ({"amount_minor": 10**12 + 1}, "amount_minor", "Ensure this value is less than or equal to 1000000000000."),
        ({"description": "a\ud800b"}, "description", "Surrogate characters are not allowed: U+D800."),
        ({"currency": ""}, "currency", "This field may not be blank."),
    ],
)
def test_a_charge_422_reads_as_every_other_endpoints(api, user, change, field, message):
    raw = json.dumps({**charge_body(user, "k"), **change})

    response = api.post(CHARGES, data=raw, content_type="application/json")

    assert response.status_code == 422
    assert response.json() == {
        "detail": f"{field}: {message}",
        "code": "validation_error",
        "errors": {field: [message]},
    }
    assert Charge.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [("[1]", "Invalid data. Expected a dictionary, but got list."), ("null", "No data provided")],
)
def test_a_body_that_is_not_an_object_is_a_422_about_the_body(api, raw, message):
    response = api.post(CHECK, data=raw, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["errors"] == {"non_field_errors": [message]}

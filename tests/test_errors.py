"""Every failure is JSON `{"detail", "code"}` with the guide's status; no input makes a 500."""

from __future__ import annotations

import json

import pytest

from charges.models import Charge

pytestmark = pytest.mark.django_db

CHARGES = "/v1/billing/charges"


def test_malformed_json_is_400(api):
    response = api.post(CHARGES, data='{"oauth_provider": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


@pytest.mark.parametrize("raw", ["NaN", '{"a": Infinity}', "[" * 5000 + "]" * 5000, "\xff\xfe"])
def test_json_that_the_database_could_not_store_is_400(api, raw):
    response = api.post(CHARGES, data=raw.encode("latin-1"), content_type="application/json")

    assert response.status_code == 400


@pytest.mark.parametrize("raw", ['{"oauth_provider": ', "\ufeff{}", "{} x"])
def test_a_malformed_body_is_400_saying_what_json_loads_says(api, raw):
    with pytest.raises(ValueError) as refusal:
        json.loads(raw)

    response = api.post(CHARGES, data=raw.encode("utf-8"), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert str(refusal.value) in response.json()["detail"]


@pytest.mark.parametrize("raw", ['{"a": -Infinity}', '"\ud800"'])
def test_what_json_loads_would_take_but_is_not_json_is_400(api, raw):
    # json.loads takes -Infinity (PostgreSQL's jsonb does not); a lone surrogate is not UTF-8.
    response = api.post(CHARGES, data=raw.encode("utf-8", "surrogatepass"), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


@pytest.mark.parametrize("body", ["[]", '"a string"', "42", "null", "{}"])
def test_json_that_is_not_an_object_is_422(api, body):
    response = api.post(CHARGES, data=body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["detail"]


def test_a_body_over_64_kib_is_413(api, user):
    body = {**user, "amount_minor": 100, "idempotency_key": "k", "metadata": {"blob": "x" * 70_000}}

    response = api.post(CHARGES, body, format="json")

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert Charge.objects.count() == 0


def test_a_form_body_is_415_json(api):
    response = api.post(CHARGES, data="a=b", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["detail"]


def test_an_unknown_path_is_a_json_404(api):
    response = api.get("/v1/billing/nothing-here")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_wrong_method_is_405_json(api):
    response = api.get(CHARGES)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_unknown_fields_are_ignored_not_rejected(api, user):
    body = {
        **user,
        "amount_minor": 100,
        "idempotency_key": "k",
        "surprise": {"nested": [1, 2, 3]},
        "another_new_field": None,
    }

    assert api.post(CHARGES, body, format="json").status_code == 201


HOSTILE_VALUES = [None, True, 0, -1, 1e308, 10**30, "", " ", "\u0000", "\ud800", "x" * 5000, [], {}, [{}], {"a": {}}]


@pytest.mark.parametrize(
    "field",
    [
        "oauth_provider",
        "external_id",
        "tenant_id",
        "wa_id",
        "amount_minor",
        "currency",
        "description",
        "idempotency_key",
        "metadata",
        "customer_email",
    ],
)
def test_no_value_in_any_field_produces_a_500(api, user, field):
    for value in HOSTILE_VALUES:
        body = {**user, "amount_minor": 100, "idempotency_key": f"k-{field}", field: value}
        raw = json.dumps(body)
        for url in (CHARGES, "/v1/billing/credits/check", "/v1/billing/accounts"):
            response = api.post(url, data=raw, content_type="application/json")
            assert response.status_code < 500, (url, field, value, response.content)
            assert response["Content-Type"].startswith("application/json")


def test_api_paths_answer_json_even_with_debug_pages_on(api, settings):
    settings.DEBUG = True

    response = api.get("/v1/billing/accounts//transactions")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


SERVER_ERROR = {"detail": "Internal server error.", "code": "server_error"}


def _explode(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom: a bug, with SECRET details in its message")


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("accept", ["text/plain", "text/html", "*/*", "application/json", "image/png"])
def test_a_crash_in_an_api_view_is_the_json_500_whatever_the_accept_and_debug(
    api, user, settings, monkeypatch, debug, accept
):
    settings.DEBUG = debug
    api.raise_request_exception = False
    monkeypatch.setattr("accounts.selectors.account_ledger", _explode)
    account_id = api.post("/v1/billing/accounts", user, format="json").json()["account_id"]

    response = api.get(f"/v1/billing/accounts/{account_id}/transactions", HTTP_ACCEPT=accept)

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == SERVER_ERROR


@pytest.mark.parametrize("accept", ["text/plain", "text/html"])
def test_a_crash_outside_drf_is_the_json_500_with_debug_on(client, settings, monkeypatch, accept):
    settings.DEBUG = True
    client.raise_request_exception = False
    monkeypatch.setattr("billing_site.views.connection.cursor", _explode)

    response = client.get("/health", HTTP_ACCEPT=accept)

    assert response.status_code == 500
    assert response.json() == SERVER_ERROR


@pytest.mark.parametrize("accept", ["text/plain", "text/html"])
def test_a_crash_in_the_admin_never_shows_the_debug_page(admin_client, settings, monkeypatch, accept):
    settings.DEBUG = True
    admin_client.raise_request_exception = False
    monkeypatch.setattr("backoffice.admin.accounts.AccountAdmin.get_queryset", _explode)

    response = admin_client.get("/admin/accounts/account/", HTTP_ACCEPT=accept)

    assert response.status_code == 500
    body = response.content.decode()
    assert "SECRET" not in body
    assert "Traceback" not in body
    assert "DATABASES" not in body


def test_a_forged_host_with_debug_on_is_the_json_400_not_the_debug_page(client, settings):
    settings.DEBUG = True

    response = client.get("/health", HTTP_HOST="evil.example", HTTP_ACCEPT="text/plain")

    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request.", "code": "bad_request"}


def test_a_disallowed_admin_lookup_with_debug_on_never_shows_the_debug_page(admin_client, settings):
    settings.DEBUG = True

    response = admin_client.get("/admin/ledger/ledgerentry/?account__email__startswith=x", HTTP_ACCEPT="text/plain")

    assert response.status_code == 400
    assert "DATABASES" not in response.content.decode()

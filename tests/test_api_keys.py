"""API keys: X-API-Key or Bearer, scopes, revocation, expiry, and `create_api_key`."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.auth import api_key_cache_key
from accounts.models import Account, ApiKey

pytestmark = pytest.mark.django_db

CHECK = "/v1/billing/credits/check"


def test_no_key_is_401_with_a_json_body(user):
    response = APIClient().post(CHECK, user, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "WWW-Authenticate" in response
    assert not Account.objects.exists()


@pytest.mark.parametrize("key", ["nonsense", "abc.def", "a" * 200, "", "ab\u00e9.x"])
def test_a_bad_key_is_401(user, key):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)

    assert client.post(CHECK, user, format="json").status_code == 401


def test_a_right_prefix_with_a_wrong_secret_is_401(user):
    api_key, _ = ApiKey.objects.create_key(name="t", permissions="read")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=f"{api_key.prefix}.wrongsecret")

    assert client.post(CHECK, user, format="json").status_code == 401


def test_a_wrong_secret_is_401_right_after_the_key_itself_was_accepted(user):
    api_key, key = ApiKey.objects.create_key(name="t", permissions="read")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    assert client.post(CHECK, user, format="json").status_code == 200  # its verification remembered

    for wrong in (f"{api_key.prefix}.wrongsecret", key[:-1], key + "x", key[:-1] + "é"):
        client.credentials(HTTP_X_API_KEY=wrong)
        assert client.post(CHECK, user, format="json").status_code == 401, wrong


def test_the_key_may_come_as_a_bearer_token(make_client, user):
    assert make_client(bearer=True).post(CHECK, user, format="json").status_code == 200


def test_a_revoked_key_stops_working_at_once_in_this_process(user):
    api_key, key = ApiKey.objects.create_key(name="t", permissions="read")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    assert client.post(CHECK, user, format="json").status_code == 200  # now cached

    api_key.revoked = True
    api_key.save()

    response = client.post(CHECK, user, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "api_key_revoked"


def test_an_expired_key_is_401(user):
    _, key = ApiKey.objects.create_key(name="t", permissions="read", expiry_date=timezone.now() - timedelta(minutes=1))
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)

    assert client.post(CHECK, user, format="json").json()["code"] == "api_key_expired"


def test_a_read_key_checks_but_cannot_charge(make_client, user):
    reader = make_client(permissions="read")
    body = {**user, "amount_minor": 100, "idempotency_key": "k"}

    assert reader.post(CHECK, user, format="json").status_code == 200
    response = reader.post("/v1/billing/charges", body, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_tenant_bound_key_charges_only_its_tenant(make_client, user):
    acme = make_client(tenant_id="acme")
    body = {**user, "amount_minor": 100, "idempotency_key": "k", "tenant_id": "globex"}

    assert acme.post("/v1/billing/charges", body, format="json").status_code == 403
    assert not Account.objects.exists()


@override_settings(API_KEYS_REQUIRED=False)
def test_keys_can_be_switched_off_for_private_networks(user):
    assert APIClient().post(CHECK, user, format="json").status_code == 200


def test_create_api_key_prints_the_key_alone_on_the_last_line(user):
    out = StringIO()

    call_command("create_api_key", "--name", "datum", "--permissions", "read,write", "--tenant", "acme", stdout=out)

    key = out.getvalue().strip().splitlines()[-1]
    api_key = ApiKey.objects.get_from_key(key)
    assert (api_key.name, api_key.permissions, api_key.tenant_id) == ("datum", "read,write", "acme")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    assert client.post(CHECK, user, format="json").json()["account_id"]


@pytest.mark.parametrize(
    "args", [["--name", "x", "--permissions", "root"], ["--name", "", "--permissions", "read"], ["--name", "x" * 51]]
)
def test_create_api_key_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("create_api_key", *args, stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_keys_are_stored_hashed_with_a_fast_hash():
    api_key, key = ApiKey.objects.create_key(name="t")

    assert key not in api_key.hashed_key
    assert api_key.hashed_key.startswith("sha512$$")


def test_a_revocation_drops_a_copy_cached_before_its_commit(user, django_capture_on_commit_callbacks):
    api_key, key = ApiKey.objects.create_key(name="t", permissions="read")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)

    with django_capture_on_commit_callbacks() as callbacks:
        api_key.revoked = True
        api_key.save()
        # Another worker reads the committed (not yet revoked) row and caches it.
        cache.set(api_key_cache_key(api_key.prefix), {**_record(api_key), "revoked": False})
    for callback in callbacks:
        callback()

    assert client.post(CHECK, user, format="json").status_code == 401


def _record(api_key: ApiKey) -> dict:
    return {
        "hashed_key": api_key.hashed_key,
        "name": api_key.name,
        "permissions": api_key.permissions,
        "tenant_id": api_key.tenant_id,
        "revoked": api_key.revoked,
        "expiry_date": api_key.expiry_date,
    }


def test_a_cached_key_costs_no_query(make_client, user, django_assert_num_queries):
    client = make_client()
    client.post(CHECK, user, format="json")

    with django_assert_num_queries(0):
        # Authenticated (else 401), then refused by validation before any query.
        assert client.post("/v1/billing/charges", {}, format="json").status_code == 422


@override_settings(API_KEYS_REQUIRED=False)
def test_without_keys_an_anonymous_caller_may_charge_but_never_grant(user):
    grant = {**user, "amount_minor": 500, "reason": "free money", "idempotency_key": "k"}

    assert APIClient().post("/v1/billing/credits", grant, format="json").status_code in (401, 403)
    assert (
        APIClient()
        .post("/v1/billing/charges", {**user, "amount_minor": 1, "idempotency_key": "c"}, format="json")
        .status_code
        == 201
    )

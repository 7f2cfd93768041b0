"""API keys in the admin: create (the key is shown once), scopes and tenant, revoke."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey
from tests.factories import create_api_key, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(staff_user("root", superuser=True))
    return client


def check(key: str, user: dict, tenant_id: str = "") -> int:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    body = {**user, "tenant_id": tenant_id} if tenant_id else user
    return client.post("/v1/billing/credits/check", body, format="json").status_code


def test_creating_a_key_shows_it_once_with_its_scopes_and_tenant(admin_client_, user):
    response = admin_client_.post(
        "/admin/accounts/apikey/add/",
        {"name": "agent-7", "scopes": ["read", "write"], "tenant_id": "acme", "expiry_date_0": "", "expiry_date_1": ""},
        follow=True,
    )

    body = response.content.decode()
    key = re.search(r"The API key for agent-7 is: (\S+)\. ", body).group(1)
    api_key = ApiKey.objects.get(name="agent-7")
    assert (api_key.permissions, api_key.tenant_id) == ("read,write", "acme")
    assert check(key, user, "acme") == 200
    assert check(key, user, "other") == 403
    later = admin_client_.get(f"/admin/accounts/apikey/{api_key.pk}/change/").content.decode()
    assert key not in later


def test_a_key_needs_at_least_one_scope(admin_client_):
    response = admin_client_.post("/admin/accounts/apikey/add/", {"name": "none", "scopes": []})

    assert response.status_code == 200
    assert not ApiKey.objects.filter(name="none").exists()


def test_changing_scopes(admin_client_, user):
    key = create_api_key(permissions="read", name="k")
    api_key = ApiKey.objects.get(name="k")

    admin_client_.post(
        f"/admin/accounts/apikey/{api_key.pk}/change/",
        {"name": "k", "scopes": ["read", "admin"], "tenant_id": "", "expiry_date_0": "", "expiry_date_1": ""},
    )

    api_key.refresh_from_db()
    assert api_key.permissions == "read,admin"
    assert check(key, user) == 200


def test_revoking_a_key_stops_it_at_once(admin_client_, user):
    key = create_api_key(name="leaky")
    assert check(key, user) == 200  # and now it is cached

    response = admin_client_.post(
        "/admin/accounts/apikey/",
        {"action": "revoke_keys", "_selected_action": [str(ApiKey.objects.get(name="leaky").pk)]},
    )

    assert response.status_code == 302
    assert ApiKey.objects.get(name="leaky").revoked
    assert check(key, user) == 401


def test_a_revoked_key_can_be_viewed_but_not_revived(admin_client_):
    create_api_key(name="old")
    api_key = ApiKey.objects.get(name="old")
    api_key.revoked = True
    api_key.save()

    page = admin_client_.get(f"/admin/accounts/apikey/{api_key.pk}/change/")
    revive = admin_client_.post(f"/admin/accounts/apikey/{api_key.pk}/change/", {"name": "old", "scopes": ["read"]})

    assert page.status_code == 200
    assert revive.status_code == 403
    assert ApiKey.objects.get(pk=api_key.pk).revoked


def key_manager(*, may_grant: bool) -> Client:
    """Staff who may add and change API keys, with or without the grant permission."""
    permissions = ("accounts.view_apikey", "accounts.add_apikey", "accounts.change_apikey")
    if may_grant:
        permissions += ("accounts.grant_credits",)
    client = Client()
    client.force_login(staff_user("grant-holder" if may_grant else "key-manager", permissions=permissions))
    return client


def key_form(name: str, scopes: list[str], tenant_id: str = "") -> dict:
    return {"name": name, "scopes": scopes, "tenant_id": tenant_id, "expiry_date_0": "", "expiry_date_1": ""}


def test_staff_without_the_grant_permission_cannot_create_an_admin_key(db):
    response = key_manager(may_grant=False).post("/admin/accounts/apikey/add/", key_form("sneaky", ["read", "admin"]))

    assert response.status_code == 200
    assert "accounts.grant_credits" in response.content.decode()
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_staff_without_the_grant_permission_cannot_upgrade_a_key_to_admin(db, user):
    key = create_api_key(permissions="read", name="plain")
    api_key = ApiKey.objects.get(name="plain")

    response = key_manager(may_grant=False).post(
        f"/admin/accounts/apikey/{api_key.pk}/change/", key_form("plain", ["read", "admin"])
    )

    assert response.status_code == 200
    assert "accounts.grant_credits" in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.permissions == "read"
    grant = APIClient()
    grant.credentials(HTTP_X_API_KEY=key)
    body = {**user, "amount_minor": 500, "reason": "r", "idempotency_key": "g1"}
    assert grant.post("/v1/billing/credits", body, format="json").status_code == 403


def test_staff_without_the_grant_permission_cannot_widen_an_existing_admin_key(db):
    create_api_key(permissions="read,admin", tenant_id="acme", name="tenant-admin")
    api_key = ApiKey.objects.get(name="tenant-admin")

    response = key_manager(may_grant=False).post(
        f"/admin/accounts/apikey/{api_key.pk}/change/", key_form("tenant-admin", ["read", "admin"], tenant_id="")
    )

    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.tenant_id == "acme"


def test_staff_without_the_grant_permission_may_still_make_read_and_write_keys_and_drop_admin(db):
    client = key_manager(may_grant=False)
    create_api_key(permissions="read,admin", name="was-admin")
    api_key = ApiKey.objects.get(name="was-admin")

    created = client.post("/admin/accounts/apikey/add/", key_form("agent", ["read", "write"]))
    downgraded = client.post(f"/admin/accounts/apikey/{api_key.pk}/change/", key_form("was-admin", ["read"]))

    assert created.status_code == 302 and downgraded.status_code == 302
    assert ApiKey.objects.get(name="agent").permissions == "read,write"
    assert ApiKey.objects.get(name="was-admin").permissions == "read"


def test_staff_with_the_grant_permission_may_create_an_admin_key(db):
    response = key_manager(may_grant=True).post("/admin/accounts/apikey/add/", key_form("granter", ["read", "admin"]))

    assert response.status_code == 302
    assert ApiKey.objects.get(name="granter").permissions == "read,admin"

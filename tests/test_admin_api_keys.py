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

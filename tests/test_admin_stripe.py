"""dj-stripe's models in the admin: read-only, no actions, no secrets, no Stripe keys.

dj-stripe registers some 40 models with add, change and delete, and custom actions that
call Stripe; a staff user holding dj-stripe permissions (but not `grant_credits`) could add
a WebhookEndpoint with validation off and forge payments to it. Staff only look.
"""

from __future__ import annotations

import uuid

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import resolve
from djstripe.models import APIKey, WebhookEndpoint

from tests.factories import staff_user

pytestmark = pytest.mark.django_db

STRIPE_MODELS = [m for m in apps.get_app_config("djstripe").get_models() if admin.site.is_registered(m)]


@pytest.fixture
def stripe_staff() -> Client:
    """A staff user with every dj-stripe permission (add, change, delete, view), no billing ones."""
    user = staff_user("stripe-ops")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="djstripe"))
    client = Client()
    client.force_login(user)
    return client


def _url(model, view: str, *args: object) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{view}{''.join(f'{a}/' for a in args)}"


def test_dj_stripe_models_are_still_there_to_look_at():
    assert WebhookEndpoint in STRIPE_MODELS
    assert len(STRIPE_MODELS) > 30


def test_stripe_secret_keys_are_not_in_the_admin():
    assert not admin.site.is_registered(APIKey)


@pytest.mark.parametrize("model", STRIPE_MODELS, ids=lambda m: m._meta.model_name)
def test_no_one_may_add_change_or_delete_a_dj_stripe_row(rf, model):
    model_admin = admin.site._registry[model]
    stripe_ops = staff_user("stripe-ops")
    stripe_ops.user_permissions.add(*Permission.objects.filter(content_type__app_label="djstripe"))

    for user in (stripe_ops, staff_user("root", superuser=True)):
        request = rf.get("/")
        request.user = user
        client = Client()
        client.force_login(user)
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
        assert model_admin.has_view_permission(request)
        assert not model_admin.get_actions(request)
        assert client.get(_url(model, "add/")).status_code == 403
        changelist = client.get(_url(model, ""))
        assert changelist.status_code == 200, model
        assert _url(model, "add/").encode() not in changelist.content


def _endpoint() -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        id="we_viewonly",
        url="http://testserver/x",
        secret="whsec_do_not_show_me",
        api_version="2024-06-20",
        enabled_events=["*"],
        status="enabled",
        livemode=False,
        djstripe_uuid=uuid.uuid4(),
    )


def test_adding_a_webhook_endpoint_is_refused(stripe_staff):
    response = stripe_staff.post(
        _url(WebhookEndpoint, "add/"),
        {"base_url": "https://evil.example", "djstripe_validation_method": "none", "enabled_events": '["*"]'},
    )

    assert response.status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_is_shown_without_its_secret_and_cannot_be_edited(stripe_staff):
    endpoint = _endpoint()

    page = stripe_staff.get(_url(WebhookEndpoint, "", endpoint.pk, "change"))
    edit = stripe_staff.post(_url(WebhookEndpoint, "", endpoint.pk, "change"), {"djstripe_validation_method": "none"})
    delete = stripe_staff.post(_url(WebhookEndpoint, "", endpoint.pk, "delete"), {"post": "yes"})

    assert page.status_code == 200
    assert b"whsec_do_not_show_me" not in page.content
    assert edit.status_code == 403
    assert delete.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.djstripe_validation_method == "verify_signature"


@pytest.mark.parametrize("action", ["_sync_all_instances", "_resync_instances", "_cancel"])
@pytest.mark.parametrize("model", ["webhookendpoint", "subscription", "customer"])
def test_dj_stripes_custom_action_pages_are_gone(stripe_staff, action, model):
    path = f"/admin/djstripe/{model}/action/{action}/{model}/"

    response = stripe_staff.post(path, {"_selected_action": ["we_viewonly"]})

    assert resolve(path).url_name != "djstripe_custom_action"
    # What answers instead is the admin's catch-all for an object id: a redirect to its page.
    assert response.status_code == 302
    assert response["Location"].endswith("/change/")

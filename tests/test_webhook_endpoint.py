"""POST /stripe/webhook/<uuid>/ answers only for the configured endpoint.

The configured endpoint is the row `manage.py setup_stripe_webhook` makes (its id is
settings.STRIPE_WEBHOOK_ENDPOINT_ID), with signature validation on and the secret of
STRIPE_WEBHOOK_SECRET. Any other WebhookEndpoint row -- one added through dj-stripe's
admin or a shell, say with validation off -- is a 404: nothing stored, nothing credited.
"""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from djstripe.enums import WebhookEndpointValidation
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger

from ledger.models import EntryKind, LedgerEntry
from tests.localstripe import encode, make_event, sign

pytestmark = pytest.mark.django_db


def _post(client, endpoint, event, *, secret=None):
    body = encode(event)
    return client.post(
        f"/stripe/webhook/{endpoint.djstripe_uuid}/",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret=secret or settings.STRIPE_WEBHOOK_SECRET),
    )


def _rogue_endpoint(**fields):
    """What a staff user with dj-stripe's add permission could make: validation off, their own secret."""
    return WebhookEndpoint.objects.create(
        id=f"we_rogue{uuid.uuid4().hex[:10]}",
        url="http://testserver/rogue",
        secret="whsec_attacker",
        api_version="2024-06-20",
        enabled_events=["*"],
        status="enabled",
        livemode=False,
        djstripe_uuid=uuid.uuid4(),
        djstripe_validation_method=fields.pop("validation", WebhookEndpointValidation.none),
        **fields,
    )


@pytest.fixture
def paid_intent(api, localstripe, user):
    response = api.post("/v1/billing/purchases", user, format="json")
    assert response.status_code == 201, response.content
    payment_id = response.json()["payment_id"]
    localstripe.pay(payment_id)
    return localstripe.get(f"/v1/payment_intents/{payment_id}")


def test_a_forged_event_to_an_endpoint_with_validation_off_credits_nothing(client, webhook_endpoint, paid_intent, user):
    rogue = _rogue_endpoint()
    event = make_event("payment_intent.succeeded", paid_intent)

    response = _post(client, rogue, event, secret="anything at all")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not LedgerEntry.objects.filter(account__external_id=user["external_id"], kind=EntryKind.PURCHASE).exists()
    assert not Event.objects.filter(id=event["id"]).exists()
    assert not WebhookEventTrigger.objects.exists()


def test_another_endpoint_even_with_validation_on_is_404(client, webhook_endpoint, paid_intent):
    rogue = _rogue_endpoint(validation=WebhookEndpointValidation.verify_signature)
    event = make_event("payment_intent.succeeded", paid_intent)

    assert _post(client, rogue, event, secret="whsec_attacker").status_code == 404


def test_the_configured_endpoint_still_credits(client, webhook_endpoint, paid_intent, user):
    event = make_event("payment_intent.succeeded", paid_intent)

    response = _post(client, webhook_endpoint, event)

    assert response.status_code == 200, response.content
    assert LedgerEntry.objects.filter(account__external_id=user["external_id"], kind=EntryKind.PURCHASE).count() == 1


@pytest.mark.parametrize(
    "weakened",
    [
        {"djstripe_validation_method": WebhookEndpointValidation.none},
        {"djstripe_validation_method": WebhookEndpointValidation.retrieve_event},
        {"djstripe_tolerance": 30000},
        {"djstripe_tolerance": 0},
        {"secret": "whsec_someone_elses"},
    ],
)
def test_the_configured_endpoint_weakened_in_the_database_refuses_deliveries(
    client, webhook_endpoint, paid_intent, user, weakened, caplog
):
    WebhookEndpoint.objects.filter(pk=webhook_endpoint.pk).update(**weakened)
    event = make_event("payment_intent.succeeded", paid_intent)
    secret = weakened.get("secret", settings.STRIPE_WEBHOOK_SECRET)

    response = _post(client, webhook_endpoint, event, secret=secret)

    assert response.status_code == 503
    assert response["Retry-After"]
    assert response.json()["code"] == "webhook_endpoint_misconfigured"
    assert "setup_stripe_webhook" in caplog.text
    assert not LedgerEntry.objects.filter(account__external_id=user["external_id"], kind=EntryKind.PURCHASE).exists()


def test_setup_stripe_webhook_repairs_a_weakened_endpoint(client, webhook_endpoint, paid_intent):
    from webhooks.endpoint_setup import webhook_endpoint_setup

    WebhookEndpoint.objects.filter(pk=webhook_endpoint.pk).update(djstripe_validation_method="none")
    webhook_endpoint_setup(base_url="http://testserver")
    event = make_event("payment_intent.succeeded", paid_intent)

    assert _post(client, webhook_endpoint, event).status_code == 200


def test_the_endpoint_id_is_a_setting(client, webhook_endpoint, paid_intent, settings):
    rogue = _rogue_endpoint(validation=WebhookEndpointValidation.verify_signature)
    WebhookEndpoint.objects.filter(pk=rogue.pk).update(secret=settings.STRIPE_WEBHOOK_SECRET)
    settings.STRIPE_WEBHOOK_ENDPOINT_ID = rogue.id
    event = make_event("payment_intent.succeeded", paid_intent)

    assert _post(client, webhook_endpoint, event).status_code == 404
    assert _post(client, rogue, event).status_code == 200


def test_dj_stripes_own_route_without_the_slash_is_ours_too(client, webhook_endpoint, paid_intent, user):
    rogue = _rogue_endpoint()
    body = encode(make_event("payment_intent.succeeded", paid_intent))

    response = client.post(
        f"/stripe/webhook/{rogue.djstripe_uuid}",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, secret="whsec_attacker"),
    )

    assert response.status_code == 404
    assert not LedgerEntry.objects.filter(account__external_id=user["external_id"], kind=EntryKind.PURCHASE).exists()

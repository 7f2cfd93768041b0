"""dj-stripe's WebhookEndpoint for this service, kept in step with STRIPE_WEBHOOK_SECRET.

The webhook view answers for this one endpoint only (settings.STRIPE_WEBHOOK_ENDPOINT_ID,
the row made here), and only while its security settings are the ones made here
(`endpoint_drift`): another row, however it got into the database, credits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from django.conf import settings
from django.urls import reverse
from djstripe.enums import WebhookEndpointStatus, WebhookEndpointValidation
from djstripe.models import Account as StripeAccount
from djstripe.models import WebhookEndpoint
from djstripe.settings import djstripe_settings


@dataclass(frozen=True)
class EndpointSetup:
    endpoint: WebhookEndpoint
    created: bool
    changed: list[str]


def webhook_url(*, base_url: str, endpoint: WebhookEndpoint) -> str:
    path = reverse("stripe-webhook", kwargs={"uuid": endpoint.djstripe_uuid})
    return base_url.rstrip("/") + path


def _security_settings(secret: str) -> dict[str, object]:
    """What makes a delivery trustworthy: the signature, checked with our secret, recently made.

    A row switched to validation "none" would accept unsigned events, "retrieve_event"
    fetches from Stripe inside the delivery's transaction, and a larger tolerance would
    accept replays of old deliveries.
    """
    return {
        "secret": secret,
        "djstripe_validation_method": WebhookEndpointValidation.verify_signature,
        "djstripe_tolerance": stripe.Webhook.DEFAULT_TOLERANCE,
    }


def configured_endpoint_id() -> str:
    # "ciris_billing_webhook" by default: Stripe's own ids start with "we_", so it never collides.
    return settings.STRIPE_WEBHOOK_ENDPOINT_ID


def endpoint_drift(endpoint: WebhookEndpoint) -> list[str]:
    """The security fields of the configured endpoint that differ from what setup makes."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        return ["secret"]
    wanted = _security_settings(settings.STRIPE_WEBHOOK_SECRET)
    return sorted(name for name, value in wanted.items() if getattr(endpoint, name) != value)


def webhook_endpoint_setup(*, base_url: str, secret: str | None = None, dry_run: bool = False) -> EndpointSetup:
    """Create or update the endpoint row from the webhook secret; idempotent.

    The row is made with the ORM (as dj-stripe's `stripe_listen` does), not through
    Stripe's API: the operator registers the URL in Stripe's dashboard and gives us its
    signing secret. The endpoint keeps its UUID across runs, so the URL never changes.
    Signature validation (method and tolerance) is set on every run.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET if secret is None else secret
    if not secret:
        raise ValueError("STRIPE_WEBHOOK_SECRET is not set: copy the signing secret from Stripe's dashboard.")
    endpoint_id = configured_endpoint_id()
    endpoint = WebhookEndpoint.objects.filter(id=endpoint_id).first()
    created = endpoint is None
    if endpoint is None:
        endpoint = WebhookEndpoint(id=endpoint_id)
    wanted = {
        "api_version": djstripe_settings.STRIPE_API_VERSION,
        "enabled_events": ["*"],
        "status": WebhookEndpointStatus.enabled,
        "livemode": bool(settings.STRIPE_LIVE_MODE),
        # Enforced on every run (the view refuses deliveries while they differ).
        **_security_settings(secret),
    }
    changed = [name for name, value in wanted.items() if getattr(endpoint, name, None) != value]
    for name, value in wanted.items():
        setattr(endpoint, name, value)
    url = webhook_url(base_url=base_url, endpoint=endpoint)
    if endpoint.url != url:
        changed.append("url")
        endpoint.url = url
    if endpoint.djstripe_owner_account_id is None:
        endpoint.djstripe_owner_account = StripeAccount.objects.first()
    if (created or changed) and not dry_run:
        endpoint.save()
    return EndpointSetup(endpoint=endpoint, created=created, changed=[] if created else changed)

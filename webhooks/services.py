"""dj-stripe's WebhookEndpoint for this service, kept in step with STRIPE_WEBHOOK_SECRET."""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from django.conf import settings
from django.urls import reverse
from djstripe.enums import WebhookEndpointStatus, WebhookEndpointValidation
from djstripe.models import Account as StripeAccount
from djstripe.models import WebhookEndpoint
from djstripe.settings import djstripe_settings

# Our endpoint's row id. Stripe's own ids start with "we_"; this one never collides with them.
ENDPOINT_ID = "ciris_billing_webhook"


@dataclass(frozen=True)
class EndpointSetup:
    endpoint: WebhookEndpoint
    created: bool
    changed: list[str]


def webhook_url(*, base_url: str, endpoint: WebhookEndpoint) -> str:
    path = reverse("stripe-webhook", kwargs={"uuid": endpoint.djstripe_uuid})
    return base_url.rstrip("/") + path


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
    endpoint = WebhookEndpoint.objects.filter(id=ENDPOINT_ID).first()
    created = endpoint is None
    if endpoint is None:
        endpoint = WebhookEndpoint(id=ENDPOINT_ID)
    wanted = {
        "secret": secret,
        "api_version": djstripe_settings.STRIPE_API_VERSION,
        "enabled_events": ["*"],
        "status": WebhookEndpointStatus.enabled,
        "livemode": bool(settings.STRIPE_LIVE_MODE),
        # Enforced on every run: a row switched to "none" would accept unsigned events,
        # and a larger tolerance would accept replays of old deliveries.
        "djstripe_validation_method": WebhookEndpointValidation.verify_signature,
        "djstripe_tolerance": stripe.Webhook.DEFAULT_TOLERANCE,
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

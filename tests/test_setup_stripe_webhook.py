"""manage.py setup_stripe_webhook: dj-stripe's endpoint from STRIPE_WEBHOOK_SECRET, idempotently."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from djstripe.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command("setup_stripe_webhook", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_it_creates_the_endpoint_and_prints_the_url_to_give_stripe(settings):
    lines = run("--base-url", "https://billing.example.com/")

    endpoint = WebhookEndpoint.objects.get()
    assert lines == [
        "Created the webhook endpoint.",
        f"https://billing.example.com/stripe/webhook/{endpoint.djstripe_uuid}/",
    ]
    assert endpoint.secret == settings.STRIPE_WEBHOOK_SECRET
    assert endpoint.enabled_events == ["*"]
    assert endpoint.livemode is False
    assert endpoint.url == lines[-1]


def test_running_it_again_changes_nothing_and_keeps_the_url():
    first = run("--base-url", "https://billing.example.com")

    second = run("--base-url", "https://billing.example.com")

    assert second == ["The webhook endpoint is up to date.", first[-1]]
    assert WebhookEndpoint.objects.count() == 1


def test_a_new_secret_or_host_updates_the_same_endpoint(settings):
    first = run("--base-url", "https://billing.example.com")
    settings.STRIPE_WEBHOOK_SECRET = "whsec_rotated000000000000000000"

    lines = run("--base-url", "https://pay.example.com")

    endpoint = WebhookEndpoint.objects.get()
    assert lines[0] == "Updated the webhook endpoint: secret, url."
    assert endpoint.secret == "whsec_rotated000000000000000000"
    assert lines[-1].split("/")[-2] == first[-1].split("/")[-2], "the endpoint keeps its uuid"
    assert lines[-1].startswith("https://pay.example.com/stripe/webhook/")


def test_dry_run_writes_nothing():
    lines = run("--base-url", "https://billing.example.com", "--dry-run")

    assert lines[0] == "Would create the webhook endpoint."
    assert not WebhookEndpoint.objects.exists()


def test_without_a_webhook_secret_it_fails(settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    with pytest.raises(CommandError, match="STRIPE_WEBHOOK_SECRET"):
        run()
    assert not WebhookEndpoint.objects.exists()


def test_a_base_url_that_is_not_http_fails():
    with pytest.raises(CommandError, match="base-url"):
        run("--base-url", "billing.example.com")


def test_it_enforces_signature_validation_on_an_existing_endpoint():
    import stripe
    from djstripe.enums import WebhookEndpointValidation

    run("--base-url", "https://billing.example.com")
    WebhookEndpoint.objects.update(djstripe_validation_method=WebhookEndpointValidation.none, djstripe_tolerance=30000)

    lines = run("--base-url", "https://billing.example.com")

    endpoint = WebhookEndpoint.objects.get()
    assert lines[0] == "Updated the webhook endpoint: djstripe_tolerance, djstripe_validation_method."
    assert endpoint.djstripe_validation_method == WebhookEndpointValidation.verify_signature
    assert endpoint.djstripe_tolerance == stripe.Webhook.DEFAULT_TOLERANCE


def test_its_help_lists_every_event_type_the_service_needs():
    from webhooks.management.commands.setup_stripe_webhook import Command

    help_text = " ".join(Command().create_parser("manage.py", "setup_stripe_webhook").format_help().split())

    for event_type in (
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.refund.updated",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    ):
        assert event_type in help_text

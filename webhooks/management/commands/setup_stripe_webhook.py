"""manage.py setup_stripe_webhook: the webhook endpoint for STRIPE_WEBHOOK_SECRET, and its URL."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webhooks.endpoint_setup import webhook_endpoint_setup, webhook_url
from webhooks.handlers import HANDLED_EVENTS


class Command(BaseCommand):
    help = (
        "Create or update dj-stripe's webhook endpoint from STRIPE_WEBHOOK_SECRET (idempotent) "
        "and print the URL to register in Stripe's dashboard, subscribed to these events: "
        + ", ".join(HANDLED_EVENTS)
        + "."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Public base URL of this service, e.g. https://billing.example.com",
        )
        parser.add_argument("--dry-run", action="store_true", help="Show what would change; write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        base_url: str = options["base_url"]
        if not base_url.startswith(("https://", "http://")):
            raise CommandError("--base-url must start with https:// (or http:// for local testing).")
        try:
            result = webhook_endpoint_setup(base_url=base_url, dry_run=options["dry_run"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        prefix = "Would create" if options["dry_run"] else "Created"
        if result.created:
            self.stdout.write(f"{prefix} the webhook endpoint.")
        elif result.changed:
            verb = "Would update" if options["dry_run"] else "Updated"
            self.stdout.write(f"{verb} the webhook endpoint: {', '.join(sorted(result.changed))}.")
        else:
            self.stdout.write("The webhook endpoint is up to date.")
        self.stdout.write(webhook_url(base_url=base_url, endpoint=result.endpoint))

"""Consume credited Play purchases whose consume failed (Google refunds a purchase left
unacknowledged for three days): run it from cron, every few minutes or hours."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from stores.models import ConsumeState, PurchaseState, Store, StorePurchase
from stores.services import google_play_consume


class Command(BaseCommand):
    help = "Retry consuming credited Google Play purchases that are not consumed yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="At most this many purchases per run.")
        parser.add_argument("--dry-run", action="store_true", help="List them; consume nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        pending = (
            StorePurchase.objects.select_related("product")
            .filter(
                store=Store.GOOGLE_PLAY,
                state=PurchaseState.CREDITED,
                consume_state__in=[ConsumeState.PENDING, ConsumeState.FAILED],
            )
            .order_by("created_at")[: max(options["limit"], 0)]
        )
        consumed = failed = 0
        for purchase in pending:
            if options["dry_run"]:
                self.stdout.write(f"would consume {purchase} ({purchase.consume_state})")
                continue
            if google_play_consume(purchase=purchase):
                consumed += 1
            else:
                failed += 1
                self.stderr.write(f"consume failed: {purchase}: {purchase.consume_error}")
        if not options["dry_run"]:
            self.stdout.write(f"consumed {consumed}, failed {failed}")

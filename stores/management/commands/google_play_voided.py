"""Poll Play's voided purchases (the backstop Google recommends beside the RTDN push) and take
each one back through the same service as a notification: a purchase voided twice, or both
polled and notified, is taken back once."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stores import google_play
from stores.services import google_play_void


class Command(BaseCommand):
    help = "Take back Google Play purchases voided (refunded, charged back) in the last --days days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="How far back to look (Play keeps 30 days).")
        parser.add_argument("--dry-run", action="store_true", help="List them; take nothing back.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not google_play.configured():
            raise CommandError("Google Play is not configured (GOOGLE_PLAY_SERVICE_ACCOUNT_FILE).")
        if not settings.GOOGLE_PLAY_PACKAGE_NAMES:
            raise CommandError("No packages to poll (GOOGLE_PLAY_PACKAGE_NAMES).")
        if not 0 < options["days"] <= 30:
            raise CommandError("--days must be between 1 and 30.")
        start = int(time.time() * 1000) - options["days"] * 86_400_000
        counts: dict[str, int] = {}
        for package in settings.GOOGLE_PLAY_PACKAGE_NAMES:
            try:
                voided = google_play.voided_purchases(package_name=package, start_time_millis=start)
            except google_play.PlayUnavailable as failure:
                raise CommandError(f"{package}: {failure.detail}") from None
            for item in voided:
                if options["dry_run"]:
                    self.stdout.write(f"would void {package} order {item.order_id or '?'}")
                    continue
                _, result = google_play_void(purchase_token=item.purchase_token, order_id=item.order_id, source="poll")
                counts[result] = counts.get(result, 0) + 1
        if not options["dry_run"]:
            summary = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "nothing voided"
            self.stdout.write(summary)

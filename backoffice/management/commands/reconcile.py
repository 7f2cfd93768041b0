"""manage.py reconcile [--stripe]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice import reconcile, reconcile_stripe


class Command(BaseCommand):
    help = (
        "Check every account's balance, free uses and total uses against its ledger, every paid purchase "
        "against its one credit, every refund and dispute against the ledger and dj-stripe's stored copy, and "
        "(with --stripe) our credits against Stripe's succeeded PaymentIntents and each refund and dispute "
        "against Stripe's object. "
        "Prints a report and the commands that would fix each finding; changes nothing. "
        "Exits 1 on any discrepancy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stripe", action="store_true", help="Also compare with Stripe (needs STRIPE_SECRET_KEY; read-only calls)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = None
        if options["stripe"]:
            try:
                client = reconcile_stripe.stripe_client()
            except RuntimeError as error:
                raise CommandError(str(error)) from error
        try:
            found = reconcile.reconcile(stripe_client=client)
        except CommandError:
            raise
        except Exception as error:  # Stripe unreachable, bad key, ...
            if client is None:
                raise
            raise CommandError(f"Could not list PaymentIntents from Stripe: {error}") from error
        scope = "accounts, ledger and purchases" + (" and Stripe" if client else "")
        if not found:
            self.stdout.write(f"Reconciled {scope}: no discrepancies.")
            return
        self.stdout.write(f"Reconciled {scope}: {len(found)} discrepancies. Nothing was changed.")
        for line in reconcile.format_report(found):
            self.stdout.write(line)
        raise CommandError(f"{len(found)} discrepancies found.", returncode=1)

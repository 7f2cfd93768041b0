"""manage.py billing_report --from DATE --to DATE [--margins] [--format table|csv|json]"""

from __future__ import annotations

import csv
import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice import margins, reports

MAX_DAYS = 3660


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} must be a date like 2026-01-31, got {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Uses (free and paid), purchases, revenue, refunds, new accounts and their free-to-paid conversion, "
        "per day from --from to --to (both included, UTC) with a total. Money is in minor units of "
        "BILLING_CURRENCY. With --margins: LLM provider cost, revenue of the uses charged and margin, per day "
        "and per model (see backoffice/margins.py for the rules)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help="First day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="end", required=True, help="Last day (included), YYYY-MM-DD.")
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
        parser.add_argument(
            "--margins", action="store_true", help="Provider cost, revenue and margin per day and per model."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        start, end = parse_date(options["start"], "--from"), parse_date(options["end"], "--to")
        if end < start:
            raise CommandError("--to is before --from.")
        if end >= dt.date.max:  # the report's upper bound is the day after --to
            raise CommandError(f"--to must be before {dt.date.max.isoformat()}.")
        if (end - start).days >= MAX_DAYS:
            raise CommandError(f"At most {MAX_DAYS} days per report.")
        try:
            if options["margins"]:
                return self.write_margins(margins.margin_report(start=start, end=end), start, end, options["format"])
            days = reports.daily_stats(start=start, end=end)
        except OverflowError as error:  # a date the time zone cannot convert
            raise CommandError(f"--from/--to out of range: {error}.") from error
        rows = [*days, reports.total_of(days)]
        fields = reports.FIELDS
        if options["format"] == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "from": start.isoformat(),
                        "to": end.isoformat(),
                        "currency": settings.BILLING_CURRENCY,
                        "days": [d.as_dict() for d in days],
                        "total": rows[-1].as_dict(),
                    },
                    indent=2,
                )
            )
        elif options["format"] == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(fields)
            for row in rows:
                writer.writerow([getattr(row, f) for f in fields])
        else:
            self.write_table(fields, [[str(getattr(row, f)) for f in fields] for row in rows])
            self.stdout.write(f"Money in {settings.BILLING_CURRENCY} minor units; conversion = new accounts that paid.")

    def write_table(self, fields: list[str], rows: list[list[str]]) -> None:
        """Right-aligned columns, a rule under the header and above the last (total) row."""
        table = [fields, *rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(fields))]
        for n, row in enumerate(table):
            self.stdout.write("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
            if n == 0 or n == len(table) - 2:
                self.stdout.write("  ".join("-" * w for w in widths))

    def write_margins(self, report: margins.MarginReport, start: dt.date, end: dt.date, fmt: str) -> None:
        days = [d.as_dict() for d in report.days]
        models = [m.as_dict() for m in report.models]
        total = report.total.as_dict()
        fields = margins.FIELDS
        if fmt == "json":
            body = {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "currency": settings.BILLING_CURRENCY,
                "revenue_per_use_minor": float(report.revenue_per_use_minor),
                "days": days,
                "models": models,
                "total": total,
            }
            self.stdout.write(json.dumps(body, indent=2))
        elif fmt == "csv":
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow(["group", *fields])
            for group, rows in (("day", days), ("model", models), ("total", [total])):
                for row in rows:
                    writer.writerow([group, *(row[f] for f in fields)])
        else:
            for rows in (days, models):
                self.write_table(
                    fields, [["" if row[f] is None else str(row[f]) for f in fields] for row in [*rows, total]]
                )
                self.stdout.write("")
            self.stdout.write(
                f"Money in {settings.BILLING_CURRENCY} minor units (cents). Revenue per use = pack price ÷ pack uses"
                f" = {settings.BILLING_PACK_PRICE_MINOR} ÷ {settings.BILLING_PACK_USES}"
                f" = {report.revenue_per_use_minor:.2f}; free uses earn nothing."
                " A multi-model interaction is split in equal shares among its models."
            )

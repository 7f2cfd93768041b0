#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_site.settings")
    from django.core.management import execute_from_command_line

    from billing_site.tracing import setup_tracing

    setup_tracing()  # only with OTEL_EXPORTER_OTLP_ENDPOINT (e.g. runserver); before Django sets up

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

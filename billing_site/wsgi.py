"""WSGI entry point (gunicorn billing_site.wsgi, see gunicorn.conf.py)."""

import os

import django

from billing_site.tracing import setup_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_site.settings")

setup_tracing()  # only with OTEL_EXPORTER_OTLP_ENDPOINT; before Django sets up
django.setup(set_prefix=False)  # what django.core.wsgi.get_wsgi_application does first

from billing_site.handler import BillingWSGIHandler  # noqa: E402  (its middleware needs the apps loaded)

application = BillingWSGIHandler()

"""WSGI entry point (gunicorn billing_site.wsgi, see gunicorn.conf.py)."""

import os

from django.core.wsgi import get_wsgi_application

from billing_site.tracing import setup_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_site.settings")

setup_tracing()  # only with OTEL_EXPORTER_OTLP_ENDPOINT; before Django sets up
application = get_wsgi_application()

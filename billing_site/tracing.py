"""OpenTelemetry tracing, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Called from wsgi.py and manage.py before Django sets up (the instrumentor patches
Django's handler). Under gunicorn each worker imports wsgi.py after the fork, so each
gets its own exporter thread. The exporter reads the standard OTEL_* variables
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_PROTOCOL:
http/protobuf by default, grpc if asked; OTEL_SERVICE_NAME, default "ciris-billing").
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

_configured = False


def setup_tracing() -> bool:
    """Instrument Django and export spans over OTLP; False (and nothing done) when off."""
    global _configured
    if _configured:
        return True
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    except ImportError as exc:  # the packages are in requirements.txt; a slim install may lack them
        logger.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: %s", exc)
        return False
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "ciris-billing")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    _configured = True
    return True

"""OpenTelemetry: off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; then spans reach the collector."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from tests.live import ROOT

SCRIPT = """
import os, django
from billing_site.tracing import setup_tracing
print("tracing", setup_tracing())
django.setup()
from django.test import Client
Client().get("/health")
from opentelemetry import trace
provider = trace.get_tracer_provider()
if hasattr(provider, "force_flush"):
    provider.force_flush(5000)
"""


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Collector.received.append((self.path, len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run_script(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "billing_site.settings",
        "DJANGO_SECRET_KEY": "t",
        "DATABASE_URL": "sqlite:///:memory:",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_tracing_is_off_without_an_endpoint():
    result = run_script({})

    assert result.returncode == 0, result.stderr
    assert "tracing False" in result.stdout


def test_with_an_endpoint_requests_are_traced_and_exported():
    server = HTTPServer(("127.0.0.1", 0), Collector)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_script({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    finally:
        server.shutdown()
        server.server_close()

    assert result.returncode == 0, result.stderr
    assert "tracing True" in result.stdout
    assert any(path == "/v1/traces" and size > 0 for path, size in Collector.received)

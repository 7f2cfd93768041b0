"""SQLite mode: a charge during a webhook whose Stripe fetch is slow still succeeds.

The real server (gunicorn, two workers) runs on a SQLite file; Stripe is localstripe behind
a proxy on loopback that answers a fetch of the PaymentIntent 3 s late (the webhook
refreshes dj-stripe's copy of it after crediting). While the webhook waits for Stripe, a
charge must not wait for SQLite's write lock (its busy timeout is set to 1 s here, so a
lock held through the fetch would answer 503).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.live import ROOT, Gunicorn, request, server_env, unused_port
from tests.localstripe import TEST_SECRET_KEY, LocalStripe, encode, make_event, sign

pytestmark = pytest.mark.e2e

SLOW_SECONDS = 3.0
WEBHOOK_SECRET = "whsec_sqlitelocktest000000000000"


class SlowStripe:
    """A proxy to localstripe that answers GET /v1/payment_intents/... SLOW_SECONDS late."""

    def __init__(self, upstream: str):
        self.fetching = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "GET" and self.path.startswith("/v1/payment_intents/"):
                    outer.fetching.set()
                    time.sleep(SLOW_SECONDS)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(self.command, upstream + self.path, headers=headers, data=body, timeout=10)
                self.send_response(answer.status_code)
                for name in ("Content-Type", "Request-Id"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def sqlite_server(tmp_path: Path, localstripe_url: str):
    stripe_proxy = SlowStripe(localstripe_url)
    env = server_env(
        f"sqlite:///{tmp_path / 'billing.sqlite3'}",
        DJANGO_SETTINGS_MODULE="tests.sqlite_settings",
        DB_STATEMENT_TIMEOUT_MS="1000",  # SQLite's busy timeout: 1 s
        STRIPE_SECRET_KEY=TEST_SECRET_KEY,
        STRIPE_PUBLISHABLE_KEY="pk_test_cirisbillingtests0000000000",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_HOST=stripe_proxy.url,
        RATE_LIMIT_ENABLED="0",
        LOG_FORMAT="console",
    )

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    manage("migrate", "--run-syncdb", "--no-input")
    key = manage("create_api_key", "--name", "sqlite-test", "--permissions", "read,write")
    port = unused_port()
    webhook_url = manage("setup_stripe_webhook", "--base-url", f"http://127.0.0.1:{port}")
    server = Gunicorn(port, env, workers=2, log_path=tmp_path / "gunicorn.log")
    try:
        yield server, key, webhook_url, stripe_proxy, LocalStripe(localstripe_url)
    finally:
        server.stop()
        stripe_proxy.close()


def _charge(key: str) -> dict[str, object]:
    return {
        "oauth_provider": "oauth:google",
        "external_id": f"{key}@example.com",
        "amount_minor": 100,
        "idempotency_key": key,
    }


def test_a_charge_during_a_slow_stripe_fetch_of_a_webhook_succeeds(sqlite_server):
    server, key, webhook_url, stripe_proxy, localstripe = sqlite_server
    intent = localstripe.client.v1.payment_intents.create(params={"amount": 500, "currency": "usd"}).to_dict()
    body = encode(make_event("payment_intent.succeeded", intent))
    delivered: list[int] = []

    def deliver() -> None:
        answer = requests.post(
            webhook_url,
            data=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": sign(body, secret=WEBHOOK_SECRET)},
            timeout=30,
        )
        delivered.append(answer.status_code)

    # Both workers up and warm (a first request imports and connects), each with a charge.
    warm = [
        threading.Thread(
            target=request,
            args=(f"{server.url}/v1/billing/charges",),
            kwargs={"method": "POST", "body": _charge(f"warm-{i}"), "headers": {"X-API-Key": key}},
        )
        for i in range(4)
    ]
    for thread in warm:
        thread.start()
    for thread in warm:
        thread.join(30)
    webhook = threading.Thread(target=deliver)
    webhook.start()
    assert stripe_proxy.fetching.wait(15), server.output()  # the webhook now waits for Stripe
    started = time.monotonic()
    status, _, answer = request(
        f"{server.url}/v1/billing/charges",
        method="POST",
        body=_charge("during-the-webhook"),
        headers={"X-API-Key": key},
    )
    took = time.monotonic() - started
    webhook.join(30)

    assert status == 201, (answer, server.output()[-3000:])
    assert took < SLOW_SECONDS - 0.5  # it did not wait for Stripe either
    assert delivered == [200], server.output()[-3000:]

"""What a buyer's browser and Stripe do, played against the session's localstripe.

The localstripe process itself (one per session, its own virtualenv, launched by
scripts/localstripe_server.py on loopback) is started by tests/stripe_fake.py; tests tell
its objects apart by their ids.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests
import stripe

TEST_SECRET_KEY = "sk_test_cirisbillingtests0000000000"

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"  # attaches, then declines when charged


@dataclass
class LocalStripe:
    url: str

    @property
    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(TEST_SECRET_KEY, base_addresses={"api": self.url})

    def register_webhook(self, *, name: str, url: str, secret: str) -> None:
        response = requests.post(f"{self.url}/_config/webhooks/{name}", data={"url": url, "secret": secret}, timeout=5)
        response.raise_for_status()

    def pay(self, payment_intent_id: str, *, card: str = CARD_OK) -> Any:
        """What Stripe.js does in the buyer's browser: attach a card, confirm the intent."""
        method = self.client.v1.payment_methods.create(
            params={"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
        )
        # localstripe cannot confirm with payment_method= (500 "Not implemented"): attach, then confirm.
        self.client.v1.payment_intents.update(payment_intent_id, params={"payment_method": method.id})
        return self.client.v1.payment_intents.confirm(payment_intent_id)

    def get(self, path: str) -> dict[str, Any]:
        response = requests.get(f"{self.url}{path}", auth=(TEST_SECRET_KEY, ""), timeout=5)
        response.raise_for_status()
        return response.json()

    def events(self, *, type: str) -> list[dict[str, Any]]:
        return self.get(f"/v1/events?type={type}&limit=100")["data"]


# --- Signed events, as Stripe sends them ----------------------------------------------


def sign(payload: bytes, *, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def make_event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_test{uuid.uuid4().hex[:20]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()

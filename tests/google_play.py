"""Fixtures for the Google Play tests: one GoogleFake per session, the service pointed at it
through the same settings an operator sets, and the seeded store catalogue.

tests/conftest.py imports the fixtures (`google_play_fake`, `play`).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from devtools.google_fake import GoogleFake
from stores.models import Grants, Store, StoreProduct
from tests.factories import tool_product

PACKAGE = "ai.ciris.mobile"
PUBSUB_AUDIENCE = "https://billing.example.com/v1/billing/webhooks/google-play"
PUBSUB_ACCOUNT = "play-rtdn@ciris-fake.iam.gserviceaccount.com"
WEB_CLIENT_ID = "1234567890-web.apps.googleusercontent.com"
VERIFY_URL = "/v1/billing/google-play/verify"
WEBHOOK_URL = "/v1/billing/webhooks/google-play"


@pytest.fixture(scope="session")
def google_play_fake() -> Iterator[GoogleFake]:
    fake = GoogleFake().start()
    yield fake
    fake.stop()


@dataclass
class Play:
    """The fake, configured for this test, with the moves a buyer and Google make."""

    fake: GoogleFake

    def buy(self, product_id: str = "credits_100", *, state: int = 0) -> str:
        token = f"tok-{uuid.uuid4().hex}"
        self.fake.add_purchase(PACKAGE, product_id, token, state=state, order_id=f"GPA.{uuid.uuid4().hex[:20]}")
        return token

    def signed_in(self, sub: str | None = None, *, email: str = "user@example.com") -> APIClient:
        """The agent on a phone: no API key, the user's Google ID token as Bearer."""
        client = APIClient()
        token = self.fake.mint_id_token(sub or f"1043{uuid.uuid4().int % 10**17:017d}", aud=WEB_CLIENT_ID, email=email)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    def push(self, client: APIClient, notification: dict[str, Any], *, message_id: str | None = None, **token: Any):
        """Deliver a DeveloperNotification as Pub/Sub push does, with its OIDC token."""
        claims = {"aud": PUBSUB_AUDIENCE, "email": PUBSUB_ACCOUNT, **token}
        oidc = self.fake.mint_pubsub_token(aud=claims["aud"], email=claims["email"])
        data = json.dumps({"version": "1.0", "packageName": PACKAGE, **notification}).encode()
        body = {
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": message_id or uuid.uuid4().hex,
                "publishTime": "2026-12-01T12:00:00.000Z",
            },
            "subscription": "projects/ciris/subscriptions/play-rtdn",
        }
        return client.post(WEBHOOK_URL, body, format="json", HTTP_AUTHORIZATION=f"Bearer {oidc}")

    def void_notice(self, client: APIClient, token: str, **kwargs: Any):
        voided = {"purchaseToken": token, "orderId": "GPA.x", "productType": 2, "refundType": 1}
        return self.push(client, {"voidedPurchaseNotification": voided}, **kwargs)


@pytest.fixture
def play(google_play_fake: GoogleFake, settings: Any, tmp_path: Any, db: None) -> Play:
    google = google_play_fake
    account_file = tmp_path / "play-service-account.json"
    account_file.write_text(json.dumps(google.service_account_info()))
    settings.GOOGLE_PLAY_SERVICE_ACCOUNT_FILE = str(account_file)
    settings.GOOGLE_PLAY_API_URL = google.api_url
    settings.GOOGLE_PLAY_PACKAGE_NAMES = [PACKAGE, "ai.ciris.other"]
    settings.GOOGLE_PLAY_TIMEOUT_S = 5.0
    settings.GOOGLE_PLAY_PUBSUB_AUDIENCE = PUBSUB_AUDIENCE
    settings.GOOGLE_PLAY_PUBSUB_SERVICE_ACCOUNT = PUBSUB_ACCOUNT
    settings.GOOGLE_OAUTH_JWKS_URL = google.jwks_url
    settings.GOOGLE_OAUTH_CLIENT_IDS = [WEB_CLIENT_ID]
    seed_catalogue()
    return Play(fake=google)


def seed_catalogue() -> None:
    """The catalogue the data migration seeds (tests build the schema without migrations)."""
    for product_id, uses in {"credits_100": 99, "credits_250": 249, "credits_600": 599}.items():
        StoreProduct.objects.get_or_create(
            store=Store.GOOGLE_PLAY, product_id=product_id, defaults={"grants": Grants.CREDIT, "uses": uses}
        )
    StoreProduct.objects.get_or_create(
        store=Store.GOOGLE_PLAY,
        product_id="web_search_10",
        defaults={"grants": Grants.TOOL, "uses": 10, "tool": tool_product("web_search")},
    )


def verify_body(user: dict[str, str], token: str, product_id: str = "credits_100", **extra: Any) -> dict[str, Any]:
    """The agent's body, as ciris_billing_provider sends it."""
    return {
        **user,
        "email": "user@example.com",
        "display_name": "A. User",
        "purchase_token": token,
        "product_id": product_id,
        "package_name": PACKAGE,
        **extra,
    }

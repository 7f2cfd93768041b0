"""Fixtures for the App Store tests: one AppleFake per session, the service pointed at it through
the same settings an operator sets, and the seeded App Store catalogue.

Import the fixtures into a test module: `from tests.app_store import apple, app_store  # noqa: F401`.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from rest_framework.test import APIClient

from devtools.apple_fake import PRODUCTION, AppleFake
from stores.models import Grants, Store, StoreProduct

BUNDLE_ID = "ai.ciris.mobile"
CREDITS_100 = "ai.ciris.mobile.credits_100_v1"
USER_VERIFY_URL = "/v1/user/apple-storekit/verify"
VERIFY_URL = "/v1/billing/apple-storekit/verify"
WEBHOOK_URL = "/v1/billing/webhooks/apple-storekit"

_ids = itertools.count(2000000200000001)


@pytest.fixture(scope="session")
def apple() -> Iterator[AppleFake]:
    fake = AppleFake(bundle_id=BUNDLE_ID).start()
    yield fake
    fake.stop()


@dataclass
class AppStore:
    """The fake, configured for this test, with the moves a buyer and Apple make."""

    fake: AppleFake

    def buy(
        self,
        product_id: str = CREDITS_100,
        *,
        environment: str = PRODUCTION,
        transaction_id: str | None = None,
        **fields: Any,
    ) -> str:
        """A purchase Apple knows of; returns its transactionId (a string of digits)."""
        transaction_id = transaction_id or str(next(_ids))
        self.fake.add_transaction(transaction_id, product_id, environment=environment, **fields)
        return transaction_id

    def set_truth(self, transaction_id: str, *, revoked: bool, environment: str = PRODUCTION) -> None:
        """What Apple's lookup answers from now on (refunded, or the refund reversed)."""
        self.fake.transactions[environment][transaction_id] = self.news_transaction(transaction_id, revoked=revoked)

    def news_transaction(self, transaction_id: str, *, revoked: bool, at: int | None = None) -> str:
        """The signed transaction as a piece of news carries it: revoked or not, signed `at` (ms)."""
        current = jwt.decode(self.fake.transactions[PRODUCTION][transaction_id], options={"verify_signature": False})
        current = {k: v for k, v in current.items() if k not in ("revocationDate", "revocationReason")}
        when = at if at is not None else millis(datetime.datetime.now(datetime.UTC))
        if revoked:
            current |= {"revocationDate": when, "revocationReason": 0}
        return self.fake.chain.sign({**current, "signedDate": when})

    def notice(
        self, transaction_id: str, kind: str, *, at: int | None = None, uuid: str | None = None, **options: Any
    ) -> str:
        """A notification of `kind` about the transaction, signed `at` (ms); REFUND and REVOKE say
        it is revoked, REFUND_REVERSED that it is not."""
        revoked = kind in ("REFUND", "REVOKE")
        signed = self.news_transaction(transaction_id, revoked=revoked, at=at)
        return self.fake.notification(kind, signed, notification_uuid=uuid, **options)

    def user_client(self, sub: str = "001234.abcd.5678", email: str | None = "user@privaterelay.appleid.com"):
        """The iOS app: Authorization: Bearer <Sign in with Apple ID token>."""
        client = APIClient()
        token = self.fake.mint_id_token(sub, aud=BUNDLE_ID, email=email)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    def notify(self, client: Any, signed_payload: str):
        """Deliver a notification as Apple does: a JSON body, no credentials."""
        return client.post(WEBHOOK_URL, json.dumps({"signedPayload": signed_payload}), content_type="application/json")


def millis(when: datetime.datetime) -> int:
    return int(when.timestamp() * 1000)


@pytest.fixture
def app_store(apple: AppleFake, settings: Any, tmp_path: Any, db: None) -> AppStore:
    files = apple.write_files(tmp_path / "apple")
    settings.APPLE_STOREKIT_ROOT_CERTIFICATES = [files["APPLE_STOREKIT_ROOT_CERTIFICATES"]]
    settings.APPLE_STOREKIT_PRIVATE_KEY_FILE = files["APPLE_STOREKIT_PRIVATE_KEY_FILE"]
    settings.APPLE_STOREKIT_KEY_ID = files["APPLE_STOREKIT_KEY_ID"]
    settings.APPLE_STOREKIT_ISSUER_ID = files["APPLE_STOREKIT_ISSUER_ID"]
    settings.APPLE_STOREKIT_BUNDLE_ID = files["APPLE_STOREKIT_BUNDLE_ID"]
    settings.APPLE_STOREKIT_APP_APPLE_ID = int(files["APPLE_STOREKIT_APP_APPLE_ID"])
    settings.APPLE_STOREKIT_API_URL = files["APPLE_STOREKIT_API_URL"]
    settings.APPLE_STOREKIT_ENVIRONMENT = "Production"
    settings.APPLE_STOREKIT_SANDBOX_FALLBACK = False
    settings.APPLE_OAUTH_JWKS_URL = files["APPLE_OAUTH_JWKS_URL"]
    settings.APPLE_OAUTH_CLIENT_IDS = [BUNDLE_ID]
    apple.unavailable = False
    seed_catalogue()
    return AppStore(fake=apple)


def seed_catalogue() -> None:
    """The App Store catalogue the data migration seeds (tests build the schema without migrations)."""
    for size, uses in {"100": 99, "250": 249, "600": 599}.items():
        StoreProduct.objects.get_or_create(
            store=Store.APP_STORE,
            product_id=f"ai.ciris.mobile.credits_{size}_v1",
            defaults={"grants": Grants.CREDIT, "uses": uses},
        )

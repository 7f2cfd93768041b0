"""The App Store, through Apple's own app-store-server-library, in our terms.

Every transaction and notification Apple signs is verified with the library's
`SignedDataVerifier` against the root certificates in APPLE_STOREKIT_ROOT_CERTIFICATES, for
our bundle id, app id and environment, before anything counts. Transactions are looked up
with its `AppStoreServerAPIClient` (the key in APPLE_STOREKIT_PRIVATE_KEY_FILE), Production
first; a transaction Apple does not know there is looked up in the Sandbox only when
APPLE_STOREKIT_SANDBOX_FALLBACK is on (App Review buys in the Sandbox; so can any TestFlight
tester, for free: off by default). The client is synchronous (requests): every call is made
outside any transaction. Failures become AppStoreNotFound (the buyer's problem: not creditable),
AppStoreSignatureInvalid (a forgery or another app's data) or AppStoreUnavailable (Apple down,
refusing our key, or not configured: ours, a 503).
"""

from __future__ import annotations

import datetime
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from appstoreserverlibrary.api_client import APIException, AppStoreServerAPIClient
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.models.JWSTransactionDecodedPayload import JWSTransactionDecodedPayload
from appstoreserverlibrary.signed_data_verifier import SignedDataVerifier, VerificationException
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from billing_site.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

# The App Store Server API's error codes for a transaction id it does not know.
TRANSACTION_ID_NOT_FOUND = frozenset({4040010, 4000006})
PRODUCTION, SANDBOX = Environment.PRODUCTION, Environment.SANDBOX
# StoreKit 2 transaction ids are decimal; anything else could steer the lookup's URL elsewhere.
TRANSACTION_ID = re.compile(r"[0-9]{1,32}")


class AppStoreUnavailable(ServiceUnavailable):
    """Apple cannot answer now, or the service is not configured to ask it."""

    code = "app_store_unavailable"


class AppStoreNotFound(Exception):
    """Apple knows no such transaction (in any environment we may use)."""


class AppStoreSignatureInvalid(Exception):
    """Signed data that does not verify: another chain, unsigned, another app or environment."""


@dataclass(frozen=True)
class AppStoreTransaction:
    """A verified in-app purchase transaction."""

    transaction_id: str
    original_transaction_id: str
    product_id: str
    environment: str
    quantity: int
    revoked: bool
    # When Apple signed this news of the transaction: the newest news about it wins.
    signed_at: datetime.datetime


@dataclass(frozen=True)
class AppStoreNotification:
    """A verified App Store Server Notification V2, with its verified transaction (if any)."""

    notification_uuid: str
    notification_type: str
    subtype: str
    transaction: AppStoreTransaction | None


def configured() -> bool:
    return bool(
        settings.APPLE_STOREKIT_BUNDLE_ID
        and settings.APPLE_STOREKIT_ROOT_CERTIFICATES
        and settings.APPLE_STOREKIT_KEY_ID
        and settings.APPLE_STOREKIT_ISSUER_ID
        and settings.APPLE_STOREKIT_PRIVATE_KEY_FILE
    )


def environments() -> list[Environment]:
    """The environments a transaction is looked up in, in order."""
    configured_environment = Environment(settings.APPLE_STOREKIT_ENVIRONMENT)
    if configured_environment == PRODUCTION and settings.APPLE_STOREKIT_SANDBOX_FALLBACK:
        return [PRODUCTION, SANDBOX]
    return [configured_environment]


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise AppStoreUnavailable(f"The App Store is misconfigured: cannot read {path}.") from error


def _root_certificates() -> list[bytes]:
    """DER bytes of each configured root (DER or PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    roots = []
    for path in settings.APPLE_STOREKIT_ROOT_CERTIFICATES:
        data = _read(path)
        if b"-----BEGIN CERTIFICATE-----" in data:
            data = x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        roots.append(data)
    return roots


@cache
def _verifier(environment: Environment) -> SignedDataVerifier:
    return SignedDataVerifier(
        root_certificates=_root_certificates(),
        enable_online_checks=settings.APPLE_STOREKIT_ONLINE_CHECKS,
        environment=environment,
        bundle_id=settings.APPLE_STOREKIT_BUNDLE_ID,
        app_apple_id=settings.APPLE_STOREKIT_APP_APPLE_ID,
    )


@cache
def _client(environment: Environment) -> AppStoreServerAPIClient:
    client = AppStoreServerAPIClient(
        _read(settings.APPLE_STOREKIT_PRIVATE_KEY_FILE),
        settings.APPLE_STOREKIT_KEY_ID,
        settings.APPLE_STOREKIT_ISSUER_ID,
        settings.APPLE_STOREKIT_BUNDLE_ID,
        environment,
    )
    if settings.APPLE_STOREKIT_API_URL:
        # The library hard-codes Apple's hosts; `_base_url` is its only override (private:
        # the library's version is pinned and tests/test_app_store_verify.py exercises it).
        base = settings.APPLE_STOREKIT_API_URL.rstrip("/")
        client._base_url = base if environment == PRODUCTION else f"{base}/sandbox"
    return client


@receiver(setting_changed)
def _forget_clients(**kwargs: object) -> None:
    if str(kwargs.get("setting", "")).startswith("APPLE_STOREKIT_"):
        _verifier.cache_clear()
        _client.cache_clear()


def _transaction(decoded: JWSTransactionDecodedPayload) -> AppStoreTransaction:
    return AppStoreTransaction(
        transaction_id=str(decoded.transactionId),
        original_transaction_id=str(decoded.originalTransactionId or decoded.transactionId),
        product_id=str(decoded.productId),
        environment=str(decoded.rawEnvironment),
        quantity=int(decoded.quantity or 1),
        revoked=decoded.revocationDate is not None,
        signed_at=_from_millis(decoded.signedDate),
    )


def _from_millis(millis: int | None) -> datetime.datetime:
    if millis is None:
        raise AppStoreSignatureInvalid("signed transaction without a signedDate")
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.UTC)


def verify_transaction(signed_transaction: str, *, environment: Environment) -> AppStoreTransaction:
    try:
        decoded = _verifier(environment).verify_and_decode_signed_transaction(signed_transaction)
    except VerificationException as error:
        raise AppStoreSignatureInvalid(f"signed transaction refused: {error.status.name}") from error
    return _transaction(decoded)


def transaction(transaction_id: str) -> AppStoreTransaction:
    """The transaction as Apple reports it now (its signature verified), Production first."""
    if not configured():
        raise AppStoreUnavailable("The App Store is not configured on this server.")
    if not TRANSACTION_ID.fullmatch(transaction_id):
        raise AppStoreNotFound(transaction_id)
    for environment in environments():
        try:
            response = _client(environment).get_transaction_info(transaction_id)
        except APIException as error:
            if error.raw_api_error in TRANSACTION_ID_NOT_FOUND or error.http_status_code == 404:
                continue
            logger.warning("app store lookup failed: HTTP %s %s", error.http_status_code, error.raw_api_error)
            raise AppStoreUnavailable("The App Store did not answer; retry shortly.") from error
        except Exception as error:  # requests' connection errors, timeouts, bad JSON
            logger.warning("app store unreachable: %s", error)
            raise AppStoreUnavailable("The App Store did not answer; retry shortly.") from error
        if not response.signedTransactionInfo:
            raise AppStoreUnavailable("The App Store answered without a signed transaction.")
        return verify_transaction(response.signedTransactionInfo, environment=environment)
    raise AppStoreNotFound(transaction_id)


def notification(signed_payload: str) -> AppStoreNotification:
    """A notification whose signature, bundle id and environment verify, else AppStoreSignatureInvalid."""
    if not configured():
        raise AppStoreUnavailable("The App Store is not configured on this server.")
    refused: VerificationException | None = None
    for environment in environments():
        try:
            decoded = _verifier(environment).verify_and_decode_notification(signed_payload)
        except VerificationException as error:
            refused = error
            continue
        signed_transaction = decoded.data.signedTransactionInfo if decoded.data else None
        return AppStoreNotification(
            notification_uuid=str(decoded.notificationUUID or ""),
            notification_type=str(decoded.rawNotificationType or ""),
            subtype=str(decoded.rawSubtype or ""),
            transaction=verify_transaction(signed_transaction, environment=environment) if signed_transaction else None,
        )
    assert refused is not None
    raise AppStoreSignatureInvalid(f"notification refused: {refused.status.name}") from refused

"""The Apple fake signs what Apple's own library accepts, and nothing else passes for it."""

from __future__ import annotations

import pytest
from appstoreserverlibrary.api_client import APIException, AppStoreServerAPIClient
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.signed_data_verifier import SignedDataVerifier, VerificationException

from devtools.apple_fake import SANDBOX, AppleFake, CertificateChain

PRODUCT = "ai.ciris.mobile.credits_100_v1"


@pytest.fixture(scope="module")
def apple():
    fake = AppleFake().start()
    yield fake
    fake.stop()


def verifier(apple: AppleFake, environment: Environment = Environment.PRODUCTION, bundle_id: str | None = None):
    return SignedDataVerifier(
        root_certificates=[apple.chain.root_der],
        enable_online_checks=False,
        environment=environment,
        bundle_id=bundle_id or apple.bundle_id,
        app_apple_id=apple.app_apple_id,
    )


def test_apples_verifier_accepts_a_transaction_the_fake_signed(apple):
    decoded = verifier(apple).verify_and_decode_signed_transaction(apple.sign_transaction("1001", PRODUCT))
    assert (decoded.transactionId, decoded.productId, decoded.bundleId) == ("1001", PRODUCT, apple.bundle_id)
    assert decoded.revocationDate is None


def test_apples_verifier_accepts_a_notification_the_fake_signed(apple):
    signed = apple.notification("REFUND", apple.sign_transaction("1002", PRODUCT, revoked=True))
    decoded = verifier(apple).verify_and_decode_notification(signed)
    assert decoded.rawNotificationType == "REFUND"
    inner = verifier(apple).verify_and_decode_signed_transaction(decoded.data.signedTransactionInfo)
    assert inner.revocationDate is not None


def test_a_transaction_signed_by_another_chain_is_refused(apple):
    forged = CertificateChain("Forger").sign(apple.transaction_payload("1003", PRODUCT))
    with pytest.raises(VerificationException):
        verifier(apple).verify_and_decode_signed_transaction(forged)


def test_a_transaction_for_another_bundle_or_environment_is_refused(apple):
    with pytest.raises(VerificationException):
        verifier(apple).verify_and_decode_signed_transaction(
            apple.sign_transaction("1004", PRODUCT, bundle_id="com.other")
        )
    with pytest.raises(VerificationException):
        verifier(apple).verify_and_decode_signed_transaction(
            apple.sign_transaction("1005", PRODUCT, environment=SANDBOX)
        )


def api_client(apple: AppleFake, environment: Environment, base: str) -> AppStoreServerAPIClient:
    client = AppStoreServerAPIClient(
        apple.api_key_pem(), apple.api_key_id, apple.api_issuer_id, apple.bundle_id, environment
    )
    client._base_url = base
    return client


def test_apples_api_client_looks_up_a_transaction_at_the_fake(apple):
    apple.add_transaction("1006", PRODUCT)
    response = api_client(apple, Environment.PRODUCTION, apple.url).get_transaction_info("1006")
    assert verifier(apple).verify_and_decode_signed_transaction(response.signedTransactionInfo).transactionId == "1006"


def test_the_fakes_lookup_answers_not_found_per_environment(apple):
    apple.add_transaction("1007", PRODUCT, environment=SANDBOX)
    with pytest.raises(APIException) as not_found:
        api_client(apple, Environment.PRODUCTION, apple.url).get_transaction_info("1007")
    assert not_found.value.raw_api_error == 4040010
    sandbox = api_client(apple, Environment.SANDBOX, f"{apple.url}/sandbox").get_transaction_info("1007")
    assert sandbox.signedTransactionInfo


def test_the_fakes_lookup_refuses_a_request_signed_with_another_key(apple):
    other = AppleFake()
    client = AppStoreServerAPIClient(
        other.api_key_pem(), apple.api_key_id, apple.api_issuer_id, apple.bundle_id, Environment.PRODUCTION
    )
    client._base_url = apple.url
    with pytest.raises(APIException) as refused:
        client.get_transaction_info("1006")
    assert refused.value.http_status_code == 401

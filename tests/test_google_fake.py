"""The Google fake speaks to Google's own client libraries unchanged.

If google-auth or google-api-python-client could not talk to it as they talk to Google, the
Play and ID-token tests built on it would prove nothing about production.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import httplib2
import jwt
import pytest
from google.auth.transport.requests import Request
from google.oauth2 import id_token, service_account
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from devtools.google_fake import GoogleFake
from devtools.jwks import new_rsa_key, private_pem

PACKAGE = "ai.ciris.mobile"
SCOPES = ["https://www.googleapis.com/auth/androidpublisher"]
WEB_CLIENT = "web-client.apps.googleusercontent.com"


@pytest.fixture
def google() -> Iterator[GoogleFake]:
    fake = GoogleFake().start()
    yield fake
    fake.stop()


def publisher(google: GoogleFake):  # type: ignore[no-untyped-def]
    creds = service_account.Credentials.from_service_account_info(google.service_account_info(), scopes=SCOPES)
    http = AuthorizedHttp(creds, http=httplib2.Http(timeout=5))
    return discovery.build(
        "androidpublisher",
        "v3",
        http=http,
        cache_discovery=False,
        static_discovery=True,
        client_options={"api_endpoint": google.api_url},
    )


def test_a_service_account_signs_in_and_reads_consumes_and_acknowledges_a_purchase(google: GoogleFake) -> None:
    google.add_purchase(PACKAGE, "credits_100", "tok-1", order_id="GPA.1234-5678")
    products = publisher(google).purchases().products()

    got = products.get(packageName=PACKAGE, productId="credits_100", token="tok-1").execute()
    products.acknowledge(packageName=PACKAGE, productId="credits_100", token="tok-1", body={}).execute()
    products.consume(packageName=PACKAGE, productId="credits_100", token="tok-1").execute()

    assert got["kind"] == "androidpublisher#productPurchase"
    assert got["orderId"] == "GPA.1234-5678"
    assert got["purchaseState"] == 0 and got["consumptionState"] == 0
    assert isinstance(got["purchaseTimeMillis"], str)
    assert google.consumed("tok-1") and google.acknowledged("tok-1")
    assert ("POST", "/token") in google.requests


def test_consuming_twice_is_400_and_unknown_or_expired_tokens_are_404_and_410(google: GoogleFake) -> None:
    google.add_purchase(PACKAGE, "credits_100", "tok-2")
    google.add_purchase(PACKAGE, "credits_100", "tok-old")
    google.expire("tok-old")
    products = publisher(google).purchases().products()
    products.consume(packageName=PACKAGE, productId="credits_100", token="tok-2").execute()

    statuses = []
    for call in (
        products.consume(packageName=PACKAGE, productId="credits_100", token="tok-2"),
        products.get(packageName=PACKAGE, productId="credits_100", token="no-such-token"),
        products.get(packageName=PACKAGE, productId="credits_100", token="tok-old"),
    ):
        with pytest.raises(HttpError) as caught:
            call.execute()
        statuses.append(caught.value.resp.status)

    assert statuses == [400, 404, 410]


def test_play_routes_refuse_a_caller_without_an_access_token(google: GoogleFake) -> None:
    google.add_purchase(PACKAGE, "credits_100", "tok-3")
    url = f"{google.url}/androidpublisher/v3/applications/{PACKAGE}/purchases/products/credits_100/tokens/tok-3"

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=5)

    assert caught.value.code == 401


def test_a_service_account_assertion_signed_by_another_key_gets_no_access_token(google: GoogleFake) -> None:
    info = {**google.service_account_info(), "private_key": private_pem(new_rsa_key())}
    creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)

    with pytest.raises(Exception, match="invalid_grant"):
        creds.refresh(Request())


def test_voided_purchases_list_refunds_in_the_window_and_pages(google: GoogleFake) -> None:
    for n in range(3):
        google.add_purchase(PACKAGE, "credits_100", f"tok-v{n}")
        google.void(f"tok-v{n}", refund_type=1)
    google.add_purchase(PACKAGE, "credits_100", "tok-kept")
    voided = publisher(google).purchases().voidedpurchases()
    start = str(int(time.time() * 1000) - 60_000)

    first = voided.list(packageName=PACKAGE, startTime=start, maxResults=2).execute()
    second = voided.list(
        packageName=PACKAGE, startTime=start, maxResults=2, token=first["tokenPagination"]["nextPageToken"]
    ).execute()
    none_yet = voided.list(packageName=PACKAGE, startTime="0", endTime="1").execute()

    tokens = [v["purchaseToken"] for v in first["voidedPurchases"] + second["voidedPurchases"]]
    assert sorted(tokens) == ["tok-v0", "tok-v1", "tok-v2"]
    assert "tokenPagination" not in second
    assert "voidedPurchases" not in none_yet
    assert first["voidedPurchases"][0]["refundType"] == 1


def test_injected_failures_hit_the_next_matching_requests_only(google: GoogleFake) -> None:
    google.add_purchase(PACKAGE, "credits_100", "tok-4")
    products = publisher(google).purchases().products()
    google.fail_next("tok-4", 503, times=1)

    with pytest.raises(HttpError) as caught:
        products.get(packageName=PACKAGE, productId="credits_100", token="tok-4").execute()
    again = products.get(packageName=PACKAGE, productId="credits_100", token="tok-4").execute()

    assert caught.value.resp.status == 503
    assert again["purchaseState"] == 0


def test_google_auth_verifies_an_id_token_from_the_fake_key_set(google: GoogleFake) -> None:
    token = google.mint_id_token("1234567890", aud=WEB_CLIENT, email="user@example.com")

    claims = id_token.verify_token(token, Request(), audience=[WEB_CLIENT], certs_url=google.jwks_url)

    assert claims["sub"] == "1234567890" and claims["email"] == "user@example.com"
    assert claims["iss"] == "https://accounts.google.com"


def test_pyjwt_verifies_a_pubsub_push_token_and_the_key_set_can_go_down(google: GoogleFake) -> None:
    token = google.mint_pubsub_token(aud="https://billing.example/rtdn", email="push@ciris.iam.gserviceaccount.com")
    key = jwt.PyJWKClient(google.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="https://billing.example/rtdn")
    google.jwks_unavailable = True

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(google.jwks_url, timeout=5)

    assert claims["email"] == "push@ciris.iam.gserviceaccount.com"
    assert caught.value.code == 503


def test_a_rotated_key_set_publishes_only_the_new_key_unless_asked(google: GoogleFake) -> None:
    old = google.issuer.kid
    google.issuer.rotate(keep_previous=True)
    both = json.load(urllib.request.urlopen(google.jwks_url, timeout=5))
    google.issuer.rotate()
    latest = json.load(urllib.request.urlopen(google.jwks_url, timeout=5))

    assert old in [k["kid"] for k in both["keys"]] and len(both["keys"]) == 2
    assert [k["kid"] for k in latest["keys"]] == [google.issuer.kid]

"""The CIRIS agent on a phone or desktop: a Google or Apple ID token instead of an API key.

Every token here is really signed (by the loopback fakes' RSA keys) and verified against the
fakes' published key sets, reached through the same settings an operator sets for Google's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from io import StringIO

import jwt
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.id_tokens import token_sha256
from accounts.models import Account, RevokedToken
from devtools.apple_fake import AppleIdFake
from devtools.google_fake import GoogleFake
from devtools.jwks import new_rsa_key, private_pem
from purchases.models import Purchase
from tests.factories import create_api_key, funded_account, paid_purchase, staff_user, tool_product

WEB_CLIENT = "ciris-web.apps.googleusercontent.com"
APPLE_CLIENT = "ai.ciris.mobile"
CHECK = "/v1/billing/credits/check"
# What the agent's credit-gate provider sends in token mode (ciris_billing_provider.py): its
# own idea of the identity, which the service ignores in favour of the token's.
AGENT_BODY = {
    "oauth_provider": "oauth:google",
    "external_id": "someone-else@example.com",
    "wa_id": "wa-123",
    "tenant_id": "tenant-x",
    "customer_email": "someone-else@example.com",
    "context": {"channel_id": "api_android", "request_id": "r1"},
}


@pytest.fixture
def google(settings) -> Iterator[GoogleFake]:
    fake = GoogleFake().start()
    settings.GOOGLE_OAUTH_CLIENT_IDS = ["ciris-android.apps.googleusercontent.com", WEB_CLIENT]
    settings.GOOGLE_OAUTH_JWKS_URL = fake.jwks_url
    yield fake
    fake.stop()


@pytest.fixture
def apple(settings) -> Iterator[AppleIdFake]:
    fake = AppleIdFake().start()
    settings.APPLE_OAUTH_CLIENT_IDS = [APPLE_CLIENT]
    settings.APPLE_OAUTH_JWKS_URL = fake.jwks_url
    yield fake
    fake.stop()


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def check(token: str, body: dict | None = None):  # type: ignore[no-untyped-def]
    return bearer(token).post(CHECK, AGENT_BODY if body is None else body, format="json")


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- what a signed-in user may do ---------------------------------------------------------


@pytest.mark.django_db
def test_the_agents_check_with_a_google_token_acts_for_the_token_user_not_the_body(google) -> None:
    token = google.mint_id_token("1098765", aud=WEB_CLIENT, email="ana@example.com")

    response = check(token)

    assert response.status_code == 200
    assert response.json()["free_uses_remaining"] == 3
    account = Account.objects.get()
    assert (account.tenant_id, account.oauth_provider, account.external_id) == ("", "oauth:google", "1098765")
    assert account.email == "ana@example.com"
    assert not Account.objects.filter(external_id="someone-else@example.com").exists()


@pytest.mark.django_db
def test_a_token_check_needs_no_identity_in_the_body(google) -> None:
    token = google.mint_id_token("1098765", aud=WEB_CLIENT)

    response = check(token, {})

    assert response.status_code == 200
    assert Account.objects.get().external_id == "1098765"


@pytest.mark.django_db
def test_an_android_token_for_the_web_client_id_is_accepted(google) -> None:
    token = google.mint_id_token("42", aud=WEB_CLIENT, azp="ciris-android.apps.googleusercontent.com")

    assert check(token).status_code == 200


@pytest.mark.django_db
def test_an_apple_token_works_on_the_same_routes_as_a_google_one(google, apple) -> None:
    token = apple.mint_id_token("001234.abcd.5678", aud=APPLE_CLIENT, email="x@privaterelay.appleid.com")
    tool_product()

    responses = [
        check(token),
        bearer(token).get("/v1/tools/balance/web_search"),
        bearer(token).get("/v1/billing/transactions"),
    ]

    assert [r.status_code for r in responses] == [200, 200, 200]
    account = Account.objects.get()
    assert (account.oauth_provider, account.external_id) == ("oauth:apple", "001234.abcd.5678")


@pytest.mark.django_db
def test_tool_reads_take_the_identity_from_the_token_not_the_query(google) -> None:
    tool_product()
    funded_account({"oauth_provider": "oauth:google", "external_id": "7"}, uses=5)
    token = google.mint_id_token("7", aud=WEB_CLIENT)
    client = bearer(token)

    balance = client.get("/v1/tools/balance/web_search")
    checked = client.get("/v1/tools/check/web_search?oauth_provider=oauth:google&external_id=victim@example.com")
    balances = client.get("/v1/tools/balance")

    assert balance.status_code == checked.status_code == balances.status_code == 200
    assert checked.json()["main_pool_credits"] == 5
    assert not Account.objects.filter(external_id="victim@example.com").exists()


@pytest.mark.django_db
def test_a_token_reads_its_own_transactions_whatever_the_query_names(google) -> None:
    funded_account({"oauth_provider": "oauth:google", "external_id": "7"}, uses=2)
    funded_account({"oauth_provider": "oauth:google", "external_id": "victim@example.com"}, uses=9)
    token = google.mint_id_token("7", aud=WEB_CLIENT)

    response = bearer(token).get("/v1/billing/transactions?oauth_provider=oauth:google&external_id=victim@example.com")

    assert response.status_code == 200
    amounts = [t["amount_minor"] for t in response.json()["transactions"]]
    assert 200 in amounts and 900 not in amounts


@pytest.mark.django_db
def test_a_token_sees_its_own_stripe_purchase_status_but_not_another_users(google) -> None:
    mine = paid_purchase(
        funded_account({"oauth_provider": "oauth:google", "external_id": "7"}), payment_intent_id="pi_mine"
    )
    theirs = paid_purchase(
        funded_account({"oauth_provider": "oauth:google", "external_id": "8"}), payment_intent_id="pi_theirs"
    )
    client = bearer(google.mint_id_token("7", aud=WEB_CLIENT))

    own = client.get(f"/v1/billing/purchases/{mine.stripe_payment_intent_id}/status")
    other = client.get(f"/v1/billing/purchases/{theirs.stripe_payment_intent_id}/status")

    assert own.status_code == 200 and own.json()["succeeded"] is True
    assert other.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/billing/charges", {"amount_minor": 1, "currency": "USD", "idempotency_key": "c1"}),
        ("post", "/v1/billing/credits", {"amount_minor": 500, "reason": "free money", "idempotency_key": "g1"}),
        ("post", "/v1/tools/charge", {"product_type": "web_search", "idempotency_key": "t1"}),
        ("post", "/v1/billing/litellm/usage", {"interaction_id": "i1", "total_llm_calls": 1}),
        ("post", "/v1/billing/accounts", {}),
    ],
)
def test_a_token_may_not_charge_grant_post_usage_or_make_accounts(google, method, path, body) -> None:
    funded_account({"oauth_provider": "oauth:google", "external_id": "7"}, uses=5)
    client = bearer(google.mint_id_token("7", aud=WEB_CLIENT))

    response = getattr(client, method)(path, {**AGENT_BODY, **body}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "user_token_forbidden"
    assert Account.objects.get(external_id="7").balance_minor == 500


@pytest.mark.django_db
def test_a_token_may_not_read_an_account_by_id_not_even_its_own(google) -> None:
    own = funded_account({"oauth_provider": "oauth:google", "external_id": "7"})
    other = funded_account({"oauth_provider": "oauth:google", "external_id": "8"})
    client = bearer(google.mint_id_token("7", aud=WEB_CLIENT))

    statuses = [
        client.get(f"/v1/billing/accounts/{a.pk}{suffix}").status_code
        for a in (own, other)
        for suffix in ("", "/transactions")
    ]

    assert statuses == [403, 403, 403, 403]


@pytest.mark.django_db
def test_an_api_key_sent_as_bearer_is_still_an_api_key(google, user) -> None:
    key = create_api_key(permissions="read")

    response = bearer(key).post(CHECK, user, format="json")

    assert response.status_code == 200
    assert Account.objects.get().external_id == user["external_id"]


# --- every forgery is 401, never a 500 ------------------------------------------------------


def _refused(response, code: str = "invalid_token") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.content
    assert response.json()["code"] == code
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert not Account.objects.filter(external_id="7").exists()


@pytest.mark.django_db
def test_an_expired_token_is_401_token_expired_so_the_agent_refreshes(google) -> None:
    token = google.mint_id_token("7", aud=WEB_CLIENT, issued_at=int(time.time()) - 7200, expires_in=3600)

    _refused(check(token), "token_expired")


@pytest.mark.django_db
def test_a_token_expired_less_than_a_minute_ago_is_still_accepted(google) -> None:
    token = google.mint_id_token("7", aud=WEB_CLIENT, issued_at=int(time.time()) - 3630, expires_in=3600)

    assert check(token).status_code == 200


@pytest.mark.django_db
def test_alg_none_is_refused(google) -> None:
    claims = jwt.decode(google.mint_id_token("7", aud=WEB_CLIENT), options={"verify_signature": False})
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': google.issuer.kid})}.{b64(claims)}."

    _refused(check(unsigned))


@pytest.mark.django_db
def test_hs256_signed_with_the_public_key_is_refused(google) -> None:
    claims = jwt.decode(google.mint_id_token("7", aud=WEB_CLIENT), options={"verify_signature": False})
    secret = google.issuer.public_pem().encode()
    header = {"alg": "HS256", "typ": "JWT", "kid": google.issuer.kid}
    signing_input = f"{b64(header)}.{b64(claims)}"
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    forged = f"{signing_input}.{signature.rstrip(b'=').decode()}"

    _refused(check(forged))


@pytest.mark.django_db
def test_a_token_signed_by_a_foreign_key_under_a_known_kid_is_refused(google) -> None:
    claims = jwt.decode(google.mint_id_token("7", aud=WEB_CLIENT), options={"verify_signature": False})
    forged = jwt.encode(claims, private_pem(new_rsa_key()), algorithm="RS256", headers={"kid": google.issuer.kid})

    _refused(check(forged))


@pytest.mark.django_db
def test_a_kid_not_in_the_set_refetches_the_set_once_and_is_still_refused(google, settings) -> None:
    settings.ID_TOKEN_JWKS_COOLDOWN_SECONDS = 0
    assert bearer(google.mint_id_token("6", aud=WEB_CLIENT)).post(CHECK, {}).status_code == 200  # set cached
    fetches = google.requests.count(("GET", "/oauth2/v3/certs"))

    _refused(check(google.mint_id_token("7", aud=WEB_CLIENT, kid="not-in-the-set")))
    assert google.requests.count(("GET", "/oauth2/v3/certs")) == fetches + 1


@pytest.mark.django_db
def test_unknown_kids_refetch_at_most_once_per_cooldown(google, settings) -> None:
    settings.ID_TOKEN_JWKS_COOLDOWN_SECONDS = 30

    for n in range(5):
        _refused(check(google.mint_id_token("7", aud=WEB_CLIENT, kid=f"forged-{n}")))

    assert google.requests.count(("GET", "/oauth2/v3/certs")) == 1


@pytest.mark.django_db
def test_a_rotated_key_is_fetched_on_its_first_token(google, settings) -> None:
    settings.ID_TOKEN_JWKS_COOLDOWN_SECONDS = 0
    assert check(google.mint_id_token("7", aud=WEB_CLIENT)).status_code == 200
    google.issuer.rotate(keep_previous=True)

    assert check(google.mint_id_token("7", aud=WEB_CLIENT)).status_code == 200
    assert google.requests.count(("GET", "/oauth2/v3/certs")) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://evil.example.com"},
        {"iss": "https://appleid.apple.com"},  # Apple's issuer on a Google-signed token
        {"aud": "someone-elses-client.apps.googleusercontent.com"},
        {"exp": None},
        {"sub": None},
        {"iat": None},
        {"issued_at": int(time.time()) + 3600},  # from the future
        {"nbf": int(time.time()) + 3600},
    ],
    ids=["foreign-iss", "apple-iss", "wrong-aud", "no-exp", "no-sub", "no-iat", "iat-future", "nbf-future"],
)
def test_a_token_with_bad_claims_is_refused(google, apple, claims) -> None:
    claims = dict(claims)
    token = google.mint_id_token(claims.pop("sub", "7"), aud=claims.pop("aud", WEB_CLIENT), **claims)

    _refused(check(token))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-20],  # truncated signature
        lambda t: t.rsplit(".", 1)[0] + ".",  # signature dropped
        lambda t: "x" + t,  # broken header
        lambda t: t.split(".")[0] + ".%%%." + t.split(".")[2],  # payload not base64
        lambda t: "a.b.c",
        lambda t: "..",
        lambda t: b64({"alg": "RS256", "kid": "k"}) + "." + base64.urlsafe_b64encode(b"[1,2]").decode() + ".sig",
        lambda t: t + "A" * 9000,  # far larger than any ID token
    ],
    ids=["truncated", "no-signature", "bad-header", "bad-payload", "abc", "dots", "payload-not-object", "huge"],
)
def test_a_malformed_token_is_401_never_a_500(google, mangle) -> None:
    _refused(check(mangle(google.mint_id_token("7", aud=WEB_CLIENT))))


@pytest.mark.django_db
def test_google_sign_in_is_refused_when_no_client_id_is_configured(google, settings) -> None:
    settings.GOOGLE_OAUTH_CLIENT_IDS = []

    _refused(check(google.mint_id_token("7", aud=WEB_CLIENT)))


@pytest.mark.django_db
def test_forged_tokens_count_as_failed_attempts_and_end_in_429(google, settings) -> None:
    settings.RATE_LIMIT_AUTH_FAILURES = "3/min"
    token = google.mint_id_token("7", aud="wrong-audience")

    statuses = [check(token).status_code for _ in range(5)]

    assert statuses[:3] == [401, 401, 401]
    assert statuses[-1] == 429


# --- the key set unavailable is our outage, not the user's ---------------------------------


@pytest.mark.django_db
def test_a_key_set_that_cannot_be_fetched_is_503_with_retry_after(google) -> None:
    google.jwks_unavailable = True

    response = check(google.mint_id_token("7", aud=WEB_CLIENT))

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "service_unavailable"
    assert not Account.objects.exists()


@pytest.mark.django_db
def test_a_key_set_host_that_is_down_is_503(google, settings) -> None:
    token = google.mint_id_token("7", aud=WEB_CLIENT)
    google.stop()

    assert check(token).status_code == 503


# --- revocation -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_revoked_token_is_refused_at_once_even_after_it_was_accepted(
    google, django_capture_on_commit_callbacks
) -> None:
    token = google.mint_id_token("7", aud=WEB_CLIENT, email="ana@example.com")
    assert check(token).status_code == 200  # "not revoked" is now cached
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("revoke_token", token, reason="phone stolen", stdout=out)
    response = check(token)

    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert Account.objects.get().external_id == "7"
    row = RevokedToken.objects.get()
    assert row.token_sha256 == token_sha256(token) and row.reason == "phone stolen"
    assert row.subject == "https://accounts.google.com 7 ana@example.com"
    assert token not in out.getvalue()


@pytest.mark.django_db
def test_revoking_by_sha256_from_a_log_works_and_twice_is_harmless(google) -> None:
    token = google.mint_id_token("7", aud=WEB_CLIENT)
    out = StringIO()

    call_command("revoke_token", token_sha256(token).upper(), stdout=out)
    call_command("revoke_token", token_sha256(token), stdout=out)

    assert RevokedToken.objects.count() == 1
    assert "Already revoked" in out.getvalue()
    _refused(check(token), "token_revoked")


@pytest.mark.django_db
def test_a_revocation_reaches_a_process_whose_cache_said_not_revoked_within_the_bound(google, settings) -> None:
    """A process with its own cache (no REDIS_URL) that cached "not revoked" learns of another
    process's revocation when that entry expires: REVOKED_TOKEN_CACHE_SECONDS."""
    from django.core.cache import cache

    settings.REVOKED_TOKEN_CACHE_SECONDS = 1
    token = google.mint_id_token("7", aud=WEB_CLIENT)
    assert check(token).status_code == 200  # caches "not revoked"
    RevokedToken.objects.create(token_sha256=token_sha256(token))  # another process's revocation
    cached_answer = check(token).status_code
    time.sleep(1.1)
    cache.get("warm")  # locmem expires lazily, on access

    assert cached_answer == 200  # the documented window
    assert check(token).status_code == 401


@pytest.mark.django_db
def test_staff_revoke_a_token_in_the_back_office(google, client) -> None:
    token = google.mint_id_token("7", aud=WEB_CLIENT, email="ana@example.com")
    client.force_login(staff_user(superuser=True))

    response = client.post(
        "/admin/accounts/revokedtoken/add/", {"token": token, "reason": "reported lost"}, follow=True
    )
    listing = client.get("/admin/accounts/revokedtoken/")

    assert response.status_code == 200
    row = RevokedToken.objects.get()
    assert row.revoked_by is not None and row.reason == "reported lost"
    assert row.token_sha256 in listing.content.decode()
    assert token not in listing.content.decode()
    _refused(check(token), "token_revoked")


@pytest.mark.django_db
def test_the_schema_offers_user_tokens_only_where_they_are_accepted(client) -> None:
    schema = client.get("/openapi.json").json()
    security = {
        op["operationId"]: [next(iter(s)) for s in op.get("security", [])]
        for path in schema["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }

    assert "UserToken" in schema["components"]["securitySchemes"]
    assert "UserToken" in security["credits_check"]
    assert "UserToken" in security["transactions_by_identity"]
    assert "UserToken" not in security["charges_create"]
    assert "UserToken" not in security["credits_grant"]


@pytest.mark.django_db
def test_a_token_buys_a_pack_for_its_own_account_whatever_the_body_names(google, localstripe) -> None:
    client = bearer(google.mint_id_token("7", aud=WEB_CLIENT, email="ana@example.com"))

    response = client.post("/v1/billing/purchases", {**AGENT_BODY, "tenant_id": None, "return_url": "x"}, format="json")
    status = client.get(f"/v1/billing/purchases/{response.json()['payment_id']}/status")

    assert response.status_code == 201, response.content
    assert status.status_code == 200
    purchase = Purchase.objects.get()
    assert (purchase.account.oauth_provider, purchase.account.external_id) == ("oauth:google", "7")
    assert purchase.actor == "user:oauth:google:7"


def test_a_pubsub_push_token_verifies_for_its_audience_only(google) -> None:
    from accounts.id_tokens import InvalidIdToken, verify_google_token

    token = google.mint_pubsub_token(aud="https://billing.example/rtdn", email="push@ciris.iam.gserviceaccount.com")

    claims = verify_google_token(token, audience="https://billing.example/rtdn")
    with pytest.raises(InvalidIdToken):
        verify_google_token(token, audience="https://billing.example/other")

    assert claims["email"] == "push@ciris.iam.gserviceaccount.com"

"""App Store purchases verified over HTTP against the Apple fake, on both routes: the iOS app's
(POST /v1/user/apple-storekit/verify, an Apple ID token) and the agent's
(POST /v1/billing/apple-storekit/verify, an API key or a user token)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Account
from devtools.apple_fake import SANDBOX, CertificateChain
from ledger.models import EntryKind, LedgerEntry
from stores.models import PurchaseState, Store, StorePurchase
from tests import app_store as fixtures
from tests.app_store import BUNDLE_ID, CREDITS_100, USER_VERIFY_URL, VERIFY_URL

apple, app_store = fixtures.apple, fixtures.app_store

pytestmark = pytest.mark.django_db

IOS_USER = ("oauth:apple", "001234.abcd.5678")


def apple_account() -> Account:
    return Account.objects.get(oauth_provider=IOS_USER[0], external_id=IOS_USER[1])


def credited_minor() -> int:
    return sum(LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).values_list("balance_delta_minor", flat=True))


def test_the_ios_apps_exact_request_credits_the_purchase(app_store):
    app_store.buy(CREDITS_100, transaction_id="2000000123456789")
    token = app_store.fake.mint_id_token("001234.abcd.5678", aud=BUNDLE_ID, email="user@privaterelay.appleid.com")
    ios = APIClient()

    # StoreKitManager.swift: POST, Authorization: Bearer <Apple ID token>, the id as a JSON string.
    response = ios.post(
        USER_VERIFY_URL,
        data=b'{"transaction_id":"2000000123456789"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    transaction_id = "2000000123456789"

    assert response.status_code == 200, response.content
    body = response.json()
    # Swift decodes these strictly: real JSON bools and ints.
    assert body["success"] is True
    assert body["already_processed"] is False
    assert type(body["credits_added"]) is int and body["credits_added"] == 99
    assert type(body["new_balance"]) is int and body["new_balance"] == 99
    account = apple_account()
    assert account.balance_minor == 99 * 100
    assert account.email == "user@privaterelay.appleid.com"
    row = StorePurchase.objects.get(store=Store.APP_STORE, purchase_token=transaction_id)
    assert (row.account, row.state, row.order_id) == (account, PurchaseState.CREDITED, transaction_id)
    entry = LedgerEntry.objects.get(account=account, kind=EntryKind.PURCHASE)
    assert entry.details["store_purchase_id"] == str(row.pk)


def test_the_lookup_is_authenticated_with_the_configured_key_at_the_configured_host(app_store):
    transaction_id = app_store.buy()
    app_store.fake.requests.clear()

    app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")

    assert ("GET", f"/inApps/v1/transactions/{transaction_id}") in app_store.fake.requests


def test_a_replay_is_a_success_already_processed_and_credits_nothing_more(app_store):
    transaction_id = app_store.buy()
    client = app_store.user_client()
    first = client.post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json").json()

    again = client.post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")

    assert again.status_code == 200
    assert again.json() == {**first, "already_processed": True}
    assert apple_account().balance_minor == 99 * 100
    assert credited_minor() == 99 * 100


def test_the_agents_route_credits_with_an_api_key_and_the_identity_in_the_body(api, app_store):
    transaction_id = app_store.buy("ai.ciris.mobile.credits_250_v1")
    body = {"oauth_provider": "oauth:apple", "external_id": "agent-user", "transaction_id": transaction_id}

    response = api.post(VERIFY_URL, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["credits_added"] == 249
    assert Account.objects.get(external_id="agent-user").balance_minor == 249 * 100


def test_the_agents_route_takes_a_user_token_and_ignores_the_bodys_identity(app_store):
    transaction_id = app_store.buy()
    body = {"oauth_provider": "oauth:google", "external_id": "someone-else", "transaction_id": transaction_id}

    response = app_store.user_client().post(VERIFY_URL, body, format="json")

    assert response.status_code == 200, response.content
    assert apple_account().balance_minor == 99 * 100
    assert not Account.objects.filter(external_id="someone-else").exists()


def test_the_agents_route_with_an_api_key_needs_an_identity(api, app_store):
    response = api.post(VERIFY_URL, {"transaction_id": app_store.buy()}, format="json")

    assert response.status_code == 422
    assert credited_minor() == 0


def test_the_ios_route_refuses_an_api_key(api, app_store):
    response = api.post(USER_VERIFY_URL, {"transaction_id": app_store.buy()}, format="json")

    assert response.status_code == 403
    assert credited_minor() == 0


@pytest.mark.parametrize("transaction_id", ["../../inApps/v2/history/1", "12a", "", 2000000123456789, None])
def test_a_transaction_id_that_is_not_a_string_of_digits_is_422_and_asks_apple_nothing(app_store, transaction_id):
    app_store.fake.requests.clear()

    response = app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")

    assert response.status_code == 422
    assert not [path for _, path in app_store.fake.requests if "/inApps/" in path]


# --- not creditable: success false on the iOS route, a status on the agent's -----------------


def refused_on_both_routes(app_store, api, transaction_id: str, *, status: int, code: str) -> None:
    ios = app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")
    assert ios.status_code == 200, ios.content
    body = ios.json()
    assert body["success"] is False
    assert (body["credits_added"], body["already_processed"]) == (0, False)
    assert type(body["new_balance"]) is int
    assert body["code"] == code and body["error"]

    # The same user through the agent (an API key naming the iOS user's identity).
    agent = api.post(
        VERIFY_URL,
        {"oauth_provider": IOS_USER[0], "external_id": IOS_USER[1], "transaction_id": transaction_id},
        format="json",
    )
    assert agent.status_code == status, agent.content
    assert agent.json()["code"] == (code if status != 422 else "validation_error")


def test_an_unknown_transaction_is_not_creditable(app_store, api):
    refused_on_both_routes(app_store, api, "1999999999999999", status=400, code="purchase_not_found")
    assert credited_minor() == 0


def test_a_revoked_transaction_is_not_creditable(app_store, api):
    transaction_id = app_store.buy(revoked=True)

    refused_on_both_routes(app_store, api, transaction_id, status=400, code="purchase_voided")

    assert credited_minor() == 0


def test_a_product_that_is_not_a_store_product_is_not_creditable(app_store, api):
    transaction_id = app_store.buy("ai.ciris.mobile.premium_forever")

    refused_on_both_routes(app_store, api, transaction_id, status=422, code="unknown_product")

    assert not StorePurchase.objects.exists()


def test_another_accounts_transaction_is_not_creditable(app_store, api):
    transaction_id = app_store.buy()
    api.post(
        VERIFY_URL,
        {"oauth_provider": "oauth:apple", "external_id": "first-buyer", "transaction_id": transaction_id},
        format="json",
    )

    refused_on_both_routes(app_store, api, transaction_id, status=409, code="purchase_of_another_account")

    assert credited_minor() == 99 * 100
    assert Account.objects.get(external_id="first-buyer").balance_minor == 99 * 100


def test_a_transaction_signed_by_another_chain_is_refused(app_store, api):
    transaction_id = app_store.buy()
    forged = CertificateChain("Forger").sign(app_store.fake.transaction_payload(transaction_id, CREDITS_100))
    app_store.fake.transactions["Production"][transaction_id] = forged
    # The fake re-signs its answers with its own chain; a forger's lookup answer does not.
    app_store.fake.resign = lambda signed: signed  # type: ignore[method-assign]
    try:
        refused_on_both_routes(app_store, api, transaction_id, status=400, code="purchase_invalid")
    finally:
        del app_store.fake.resign
    assert credited_minor() == 0


def test_a_transaction_of_another_bundle_is_refused(app_store, api):
    transaction_id = app_store.buy(bundle_id="com.example.other")

    refused_on_both_routes(app_store, api, transaction_id, status=400, code="purchase_invalid")

    assert credited_minor() == 0


def test_a_sandbox_transaction_answered_by_production_is_refused(app_store, api):
    # Signed for the Sandbox but served where we asked Production: the environment check refuses it.
    transaction_id = app_store.buy(environment=SANDBOX)
    app_store.fake.transactions["Production"][transaction_id] = app_store.fake.transactions[SANDBOX][transaction_id]

    refused_on_both_routes(app_store, api, transaction_id, status=400, code="purchase_invalid")

    assert credited_minor() == 0


# --- Production first, the Sandbox only when allowed ----------------------------------------


def test_a_sandbox_purchase_is_not_found_when_the_fallback_is_off(app_store):
    transaction_id = app_store.buy(environment=SANDBOX)

    body = app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json").json()

    assert (body["success"], body["code"]) == (False, "purchase_not_found")
    assert not [path for _, path in app_store.fake.requests if path.startswith("/sandbox/")]


def test_a_sandbox_purchase_is_credited_when_the_fallback_is_on(app_store, settings):
    settings.APPLE_STOREKIT_SANDBOX_FALLBACK = True
    transaction_id = app_store.buy(environment=SANDBOX)
    app_store.fake.requests.clear()

    body = app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json").json()

    assert body["success"] is True
    assert app_store.fake.requests == [
        ("GET", f"/inApps/v1/transactions/{transaction_id}"),
        ("GET", f"/sandbox/inApps/v1/transactions/{transaction_id}"),
    ]


def test_a_sandbox_server_does_not_credit_a_production_purchase(app_store, settings):
    settings.APPLE_STOREKIT_ENVIRONMENT = "Sandbox"
    transaction_id = app_store.buy()

    body = app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json").json()

    assert (body["success"], body["code"]) == (False, "purchase_not_found")


# --- Apple down or not configured: 503 on both routes ---------------------------------------


def test_apple_down_is_503_on_both_routes_and_changes_nothing(app_store, api):
    transaction_id = app_store.buy()
    app_store.fake.unavailable = True

    ios = app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")
    agent = api.post(
        VERIFY_URL,
        {"oauth_provider": "oauth:apple", "external_id": "x", "transaction_id": transaction_id},
        format="json",
    )

    for response in (ios, agent):
        assert response.status_code == 503
        assert response.json()["code"] == "app_store_unavailable"
        assert response["Retry-After"]
    assert not StorePurchase.objects.exists()


def test_apple_unreachable_is_503(app_store, settings):
    settings.APPLE_STOREKIT_API_URL = "http://127.0.0.1:9"  # nothing listens there

    response = app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": app_store.buy()}, format="json")

    assert response.status_code == 503


def test_an_unconfigured_app_store_is_503(app_store, settings):
    settings.APPLE_STOREKIT_ROOT_CERTIFICATES = []

    response = app_store.user_client().post(USER_VERIFY_URL, {"transaction_id": app_store.buy()}, format="json")

    assert response.status_code == 503


def test_verifications_are_counted_by_store_and_result(app_store):
    from stores.metrics import STORE_VERIFICATIONS

    def count(result: str) -> float:
        return STORE_VERIFICATIONS.labels(store="app_store", result=result)._value.get()

    credited, replays, not_found = count("credited"), count("already_processed"), count("not_found")
    transaction_id = app_store.buy()
    client = app_store.user_client()
    client.post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")
    client.post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")
    client.post(USER_VERIFY_URL, {"transaction_id": "1999999999999998"}, format="json")

    assert (count("credited"), count("already_processed"), count("not_found")) == (
        credited + 1,
        replays + 1,
        not_found + 1,
    )


def test_the_app_store_routes_are_documented_with_examples(client):
    paths = client.get("/openapi.json").json()["paths"]

    ios = paths["/v1/user/apple-storekit/verify"]["post"]
    assert {"200", "403", "503"} <= ios["responses"].keys()
    assert ios["requestBody"]["content"]["application/json"]["examples"]
    assert "Not creditable" in str(ios["responses"]["200"]["content"]["application/json"]["examples"])
    agent = paths["/v1/billing/apple-storekit/verify"]["post"]
    assert {"200", "400", "409", "422", "503"} <= agent["responses"].keys()
    notifications = paths["/v1/billing/webhooks/apple-storekit"]["post"]
    assert {"200", "400", "401"} <= notifications["responses"].keys()

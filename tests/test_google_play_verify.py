"""POST /v1/billing/google-play/verify with an API key, against the Google fake over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from stores.models import ConsumeState, StorePurchase
from tests.conftest import run_command
from tests.google_play import VERIFY_URL, verify_body

pytestmark = pytest.mark.django_db


def account_of(user: dict[str, str]) -> Account:
    return Account.objects.get(oauth_provider=user["oauth_provider"], external_id=user["external_id"])


def test_a_play_purchase_is_credited_and_then_consumed(api, user, play):
    token = play.buy("credits_100")

    response = api.post(VERIFY_URL, verify_body(user, token), format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["credits_added"] == 99
    assert body["new_balance"] == 99
    assert body["already_processed"] is False
    assert body["order_id"].startswith("GPA.")
    account = account_of(user)
    assert body["account_id"] == str(account.pk)
    assert account.balance_minor == 99 * 100
    assert play.fake.consumed(token)
    purchase = StorePurchase.objects.get(purchase_token=token)
    assert purchase.consume_state == ConsumeState.CONSUMED
    assert purchase.order_id == body["order_id"]
    credit = LedgerEntry.objects.get(account=account, kind=EntryKind.PURCHASE)
    assert credit.details["store_purchase_id"] == str(purchase.pk)


def test_a_replay_is_200_already_processed_with_the_original_credits_and_adds_nothing(api, user, play):
    token = play.buy("credits_250")
    first = api.post(VERIFY_URL, verify_body(user, token, "credits_250"), format="json").json()

    again = api.post(VERIFY_URL, verify_body(user, token, "credits_250"), format="json")

    assert again.status_code == 200
    assert again.json() == {**first, "already_processed": True}
    assert account_of(user).balance_minor == 249 * 100
    assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, account=account_of(user)).count() == 1


def test_a_token_credited_to_another_account_is_409_and_credits_nobody_else(api, user, play):
    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")
    stranger = {"oauth_provider": "oauth:google", "external_id": "someone-else"}

    response = api.post(VERIFY_URL, verify_body(stranger, token), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "purchase_of_another_account"
    assert not Account.objects.filter(external_id="someone-else", balance_minor__gt=0).exists()


@pytest.mark.parametrize(("state", "code"), [(2, "purchase_pending"), (1, "purchase_cancelled")])
def test_a_pending_or_cancelled_purchase_is_400_and_credits_nothing(api, user, play, state, code):
    token = play.buy(state=state)

    response = api.post(VERIFY_URL, verify_body(user, token), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not StorePurchase.objects.filter(purchase_token=token).exists()
    assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()


def test_a_pending_purchase_is_credited_once_it_completes(api, user, play):
    token = play.buy(state=2)
    assert api.post(VERIFY_URL, verify_body(user, token), format="json").status_code == 400
    play.fake.set_state(token, 0)

    response = api.post(VERIFY_URL, verify_body(user, token), format="json")

    assert response.status_code == 200
    assert response.json()["credits_added"] == 99


def test_an_unknown_or_expired_token_is_400_purchase_not_found(api, user, play):
    expired = play.buy()
    play.fake.expire(expired)

    for token in ("never-issued-token", expired):
        response = api.post(VERIFY_URL, verify_body(user, token), format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "purchase_not_found"
    assert not StorePurchase.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"package_name": "com.example.other"}, "package_name"), ({"product_id": "credits_9999"}, "product_id")],
)
def test_a_bad_package_or_product_is_422_and_play_is_not_asked(api, user, play, change, field):
    token = play.buy()
    asked = len(play.fake.requests)

    response = api.post(VERIFY_URL, verify_body(user, token, **change), format="json")

    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert len(play.fake.requests) == asked
    assert not StorePurchase.objects.exists()


def test_a_tool_pack_is_not_credit_on_the_billing_route(api, user, play):
    token = play.buy("web_search_10")

    response = api.post(VERIFY_URL, verify_body(user, token, "web_search_10"), format="json")

    assert response.status_code == 422


def test_a_product_that_differs_from_the_purchase_is_not_credited(api, user, play):
    token = play.buy("credits_100")

    response = api.post(VERIFY_URL, verify_body(user, token, "credits_600"), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "purchase_not_found"
    assert not StorePurchase.objects.exists()


@pytest.mark.parametrize("status", [500, 503, 401, 403])
def test_play_failing_is_503_with_retry_after_and_nothing_changes(api, user, play, status):
    token = play.buy()
    # A 401 is taken for an expired access token: google-auth refreshes and asks twice more.
    play.fake.fail_next(f"tokens/{token}", status, times=3 if status == 401 else 1)

    response = api.post(VERIFY_URL, verify_body(user, token), format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "google_play_unavailable"
    assert "Retry-After" in response.headers
    assert not StorePurchase.objects.exists()
    assert api.post(VERIFY_URL, verify_body(user, token), format="json").status_code == 200


def test_an_unreachable_play_is_503(api, user, play, settings):
    settings.GOOGLE_PLAY_API_URL = "http://127.0.0.1:9/"

    response = api.post(VERIFY_URL, verify_body(user, play.buy()), format="json")

    assert response.status_code == 503


def test_play_not_configured_is_503(api, user, play, settings):
    settings.GOOGLE_PLAY_SERVICE_ACCOUNT_FILE = ""

    response = api.post(VERIFY_URL, verify_body(user, play.buy()), format="json")

    assert response.status_code == 503
    assert "not configured" in response.json()["detail"]


def test_a_failed_consume_is_recorded_and_the_next_replay_consumes(api, user, play):
    token = play.buy()
    play.fake.fail_next(f"{token}:consume", 503)

    first = api.post(VERIFY_URL, verify_body(user, token), format="json")

    assert first.status_code == 200 and first.json()["credits_added"] == 99
    purchase = StorePurchase.objects.get(purchase_token=token)
    assert purchase.consume_state == ConsumeState.FAILED
    assert purchase.consume_error
    assert not play.fake.consumed(token)

    replay = api.post(VERIFY_URL, verify_body(user, token), format="json")

    assert replay.json()["already_processed"] is True
    assert play.fake.consumed(token)
    assert StorePurchase.objects.get(purchase_token=token).consume_state == ConsumeState.CONSUMED
    assert account_of(user).balance_minor == 99 * 100


def test_the_consume_command_retries_what_failed(api, user, play):
    tokens = [play.buy(), play.buy()]
    for token in tokens:
        play.fake.fail_next(f"{token}:consume", 500)
        assert api.post(VERIFY_URL, verify_body(user, token), format="json").status_code == 200

    out, _ = run_command("google_play_consume", "--dry-run")
    assert "would consume" in out and all(not play.fake.consumed(t) for t in tokens)
    out, _ = run_command("google_play_consume")

    assert "consumed 2, failed 0" in out
    assert all(play.fake.consumed(t) for t in tokens)
    assert set(StorePurchase.objects.values_list("consume_state", flat=True)) == {ConsumeState.CONSUMED}


def test_a_consume_that_got_through_before_failing_is_recorded_consumed(api, user, play):
    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")
    StorePurchase.objects.filter(purchase_token=token).update(consume_state=ConsumeState.FAILED)

    out, _ = run_command("google_play_consume")  # Play answers 400: already consumed

    assert "consumed 1" in out
    assert StorePurchase.objects.get(purchase_token=token).consume_state == ConsumeState.CONSUMED


def test_an_api_key_must_name_the_identity(api, play):
    body: dict[str, Any] = verify_body({}, play.buy())

    response = api.post(VERIFY_URL, body, format="json")

    assert response.status_code == 422
    assert "external_id" in response.json()["errors"]


def test_a_read_only_key_may_not_verify(make_client, user, play):
    response = make_client(permissions="read").post(VERIFY_URL, verify_body(user, play.buy()), format="json")

    assert response.status_code == 403
    assert not StorePurchase.objects.exists()


def test_a_closed_account_is_refused_before_play_credits_it(api, user, play):
    token = play.buy()
    api.post("/v1/billing/accounts", user, format="json")
    Account.objects.filter(external_id=user["external_id"]).update(status="closed")

    response = api.post(VERIFY_URL, verify_body(user, token), format="json")

    assert response.status_code == 403
    assert not StorePurchase.objects.filter(purchase_token=token).exists()


@pytest.mark.parametrize("junk", [None, 12, "", "x" * 5000, ["a"], {"a": 1}])
def test_malformed_fields_are_422_never_500(api, user, play, junk):
    response = api.post(VERIFY_URL, verify_body(user, "t", purchase_token=junk), format="json")

    assert response.status_code == 422


def test_unknown_body_fields_are_ignored(api, user, play):
    response = api.post(VERIFY_URL, verify_body(user, play.buy(), surprise={"x": 1}), format="json")

    assert response.status_code == 200

"""Voided Play purchases: the RTDN push (its OIDC token checked), the voided-purchases poll,
and every delivery order of verify / replay / notification / poll ending in one balance."""

from __future__ import annotations

import itertools
import uuid

import pytest

from accounts.models import Account, AccountStatus
from ledger.models import EntryKind, LedgerEntry
from stores.models import PurchaseState, StoreNotification, StorePurchase
from tests.conftest import charge_body, run_command
from tests.google_play import PUBSUB_ACCOUNT, PUBSUB_AUDIENCE, VERIFY_URL, WEBHOOK_URL, verify_body

pytestmark = pytest.mark.django_db


def account_of(user: dict[str, str]) -> Account:
    return Account.objects.get(oauth_provider=user["oauth_provider"], external_id=user["external_id"])


def assert_ledger_matches(account: Account) -> None:
    account.refresh_from_db()
    assert sum(LedgerEntry.objects.filter(account=account).values_list("balance_delta_minor", flat=True)) == (
        account.balance_minor
    )


def test_a_voided_purchase_notification_takes_the_credit_back(api, user, play):
    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")
    play.fake.void(token)

    response = play.void_notice(api, token)

    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "reversed"}
    account = account_of(user)
    assert account.balance_minor == 0
    purchase = StorePurchase.objects.get(purchase_token=token)
    assert purchase.state == PurchaseState.VOIDED
    assert (purchase.reversed_minor, purchase.shortfall_minor) == (9900, 0)
    assert purchase.reversal_entry.kind == EntryKind.REFUND
    assert_ledger_matches(account)


def test_a_refund_of_spent_credit_takes_what_is_left_and_flags_the_shortfall(
    api, user, play, settings, caplog, django_capture_on_commit_callbacks
):
    settings.BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL = True
    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")
    for i in range(60):  # 60 of the 99 uses spent
        assert api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json").status_code == 201
    account = account_of(user)
    left = account.balance_minor

    with django_capture_on_commit_callbacks(execute=True):
        play.void_notice(api, token)

    purchase = StorePurchase.objects.get(purchase_token=token)
    assert (purchase.reversed_minor, purchase.shortfall_minor) == (left, 9900 - left)
    account.refresh_from_db()
    assert account.balance_minor == 0
    assert account.status == AccountStatus.SUSPENDED
    assert "Google Play refund left a shortfall" in account.status_reason
    assert "google play refund left a shortfall" in caplog.text
    assert_ledger_matches(account)


def test_a_redelivered_message_is_answered_and_not_handled_twice(api, user, play):
    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")

    first = play.void_notice(api, token, message_id="m-1")
    again = play.void_notice(api, token, message_id="m-1")

    assert first.json()["outcome"] == "reversed"
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert StoreNotification.objects.filter(message_id="m-1").count() == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1


def test_a_purchase_voided_before_it_is_verified_is_never_credited(api, user, play):
    token = play.buy()
    play.fake.void(token)
    assert play.void_notice(api, token).json()["outcome"] == "before_credit"

    response = api.post(VERIFY_URL, verify_body(user, token), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "purchase_voided"
    assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()


def test_test_and_other_notifications_answer_200_and_change_nothing(api, play):
    test = play.push(api, {"testNotification": {"version": "1.0"}})
    bought = play.push(api, {"oneTimeProductNotification": {"purchaseToken": "t", "sku": "credits_100"}})

    assert (test.status_code, test.json()["outcome"]) == (200, "test")
    assert (bought.status_code, bought.json()["outcome"]) == (200, "ignored")
    assert not StorePurchase.objects.exists()


@pytest.mark.parametrize(
    "forgery",
    [
        {"aud": "https://someone-else.example.com/push"},
        {"email": "attacker@evil.iam.gserviceaccount.com"},
    ],
)
def test_a_push_token_for_another_audience_or_account_is_401_and_nothing_changes(api, user, play, forgery):
    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")

    response = play.void_notice(api, token, **forgery)

    assert response.status_code == 401
    assert account_of(user).balance_minor == 9900
    assert not StoreNotification.objects.exists()


def test_a_push_without_a_google_signed_token_is_401(api, user, play):
    from devtools.jwks import KeyIssuer

    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")
    foreign = KeyIssuer().mint({"aud": PUBSUB_AUDIENCE, "email": PUBSUB_ACCOUNT, "iss": "https://accounts.google.com"})
    body = {"message": {"data": "e30=", "messageId": "x"}}

    for authorization in ("", "Bearer nonsense", "Bearer a.b.c", f"Bearer {foreign}"):
        response = api.post(WEBHOOK_URL, body, format="json", HTTP_AUTHORIZATION=authorization)
        assert response.status_code == 401, authorization
    assert account_of(user).balance_minor == 9900


def test_googles_keys_unreachable_is_503_so_pubsub_retries(api, play):
    from accounts import id_tokens

    id_tokens._clients.clear()  # nothing cached: the key set must be fetched now
    play.fake.jwks_unavailable = True
    try:
        response = play.push(api, {"testNotification": {}})
    finally:
        play.fake.jwks_unavailable = False

    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert not StoreNotification.objects.exists()


@pytest.mark.parametrize("data", ["***not base64***", "bm90IGpzb24=", "WzFd"])
def test_a_push_whose_data_is_not_a_notification_is_400(api, play, data):
    oidc = play.fake.mint_pubsub_token(aud=PUBSUB_AUDIENCE, email=PUBSUB_ACCOUNT)
    body = {"message": {"data": data, "messageId": uuid.uuid4().hex}}

    response = api.post(WEBHOOK_URL, body, format="json", HTTP_AUTHORIZATION=f"Bearer {oidc}")

    assert response.status_code == 400


def test_the_poll_takes_back_what_play_lists_as_voided(api, user, play):
    tokens = [play.buy(), play.buy()]
    for token in tokens:
        api.post(VERIFY_URL, verify_body(user, token), format="json")
    play.fake.void(tokens[0])

    out, _ = run_command("google_play_voided")

    assert "reversed 1" in out  # (the session's fake may list other tests' voids too)
    assert account_of(user).balance_minor == 9900
    assert StorePurchase.objects.get(purchase_token=tokens[0]).state == PurchaseState.VOIDED
    assert StorePurchase.objects.get(purchase_token=tokens[1]).state == PurchaseState.CREDITED
    out, _ = run_command("google_play_voided")
    assert "reversed" not in out and "duplicate" in out
    assert account_of(user).balance_minor == 9900


STEPS = ("verify", "replay", "notification", "poll")


@pytest.mark.parametrize("order", list(itertools.permutations(STEPS)), ids="-".join)
def test_every_delivery_order_ends_in_the_same_balance(api, play, order):
    user = {"oauth_provider": "oauth:google", "external_id": f"perm-{uuid.uuid4()}"}
    token = play.buy()
    play.fake.void(token)  # Google voided it; we learn it in some order
    statuses = []
    for step in order:
        if step in ("verify", "replay"):
            statuses.append(api.post(VERIFY_URL, verify_body(user, token), format="json").status_code)
        elif step == "notification":
            assert play.void_notice(api, token).status_code == 200
        else:
            run_command("google_play_voided")

    assert set(statuses) <= {200, 400}
    account = Account.objects.filter(external_id=user["external_id"]).first()
    assert account is None or account.balance_minor == 0
    if account is not None:
        assert_ledger_matches(account)
    assert StorePurchase.objects.get(purchase_token=token).state == PurchaseState.VOIDED
    credits = LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, details__store_purchase_id__isnull=False)
    refunds = LedgerEntry.objects.filter(kind=EntryKind.REFUND, details__store="google_play")
    assert credits.count() == refunds.count() <= 1


def test_a_notification_for_another_apps_package_is_ignored(api, user, play):
    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")
    voided = {"purchaseToken": token, "orderId": "GPA.x", "productType": 2, "refundType": 1}

    response = play.push(api, {"packageName": "com.someone.else", "voidedPurchaseNotification": voided})

    assert response.json()["outcome"] == "ignored"
    assert account_of(user).balance_minor == 9900


def test_a_push_to_a_server_without_notification_settings_is_401(api, play, settings):
    settings.GOOGLE_PLAY_PUBSUB_AUDIENCE = ""

    response = play.push(api, {"testNotification": {}})

    assert response.status_code == 401
    assert "not configured" in response.json()["detail"]

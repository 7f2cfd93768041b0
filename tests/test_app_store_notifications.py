"""App Store Server Notifications V2 (POST /v1/billing/webhooks/apple-storekit): verified by
Apple's signature, REFUND / REVOKE take back, REFUND_REVERSED gives back, the newest news wins."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import jwt
import pytest

from accounts.models import Account, AccountStatus
from devtools.apple_fake import SANDBOX, CertificateChain
from ledger.models import EntryKind, LedgerEntry
from stores.models import PurchaseState, Store, StoreNotification, StorePurchase
from tests import app_store as fixtures
from tests.app_store import USER_VERIFY_URL
from tests.conftest import charge_body

apple, app_store = fixtures.apple, fixtures.app_store

pytestmark = pytest.mark.django_db

SUB = "001234.abcd.5678"
NOW = int(time.time() * 1000)
T1 = NOW - 30_000  # signed before any lookup (which is signed now)


def later(seconds: int) -> int:
    """News Apple signs `seconds` after now: newer than the lookup of a verify made now."""
    return int(time.time() * 1000) + seconds * 1000


def account() -> Account:
    return Account.objects.get(oauth_provider="oauth:apple", external_id=SUB)


def row(transaction_id: str) -> StorePurchase:
    return StorePurchase.objects.get(store=Store.APP_STORE, purchase_token=transaction_id)


def verify(app_store, transaction_id: str) -> dict:
    response = app_store.user_client(SUB).post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def delivered(app_store, client, signed_payload: str, outcome: str) -> None:
    response = app_store.notify(client, signed_payload)
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "outcome": outcome}


def ledger_sum() -> int:
    return sum(LedgerEntry.objects.filter(account=account()).values_list("balance_delta_minor", flat=True))


def test_a_refund_takes_the_credit_back(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)

    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=later(1)), "reversed")

    assert account().balance_minor == 0
    purchase = row(transaction_id)
    assert (purchase.state, purchase.reversed_minor, purchase.shortfall_minor) == (PurchaseState.VOIDED, 9900, 0)
    refund = LedgerEntry.objects.get(kind=EntryKind.REFUND)
    assert refund.balance_delta_minor == -9900
    assert refund.details["store_purchase_id"] == str(purchase.pk)


def test_a_revoke_takes_the_credit_back_too(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)

    delivered(app_store, client, app_store.notice(transaction_id, "REVOKE", at=later(1)), "reversed")

    assert account().balance_minor == 0


def test_a_refund_of_credit_already_spent_takes_what_is_left_and_flags_the_shortfall(app_store, client, api, settings):
    settings.BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL = True
    settings.BILLING_FREE_USES = 0  # the charge below is paid from the purchase's credit
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    spent = api.post(
        "/v1/billing/charges",
        charge_body({"oauth_provider": "oauth:apple", "external_id": SUB}, "spend-1", amount=4000),
        format="json",
    )
    assert spent.status_code == 201, spent.content

    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=later(1)), "reversed")

    purchase = row(transaction_id)
    assert (purchase.reversed_minor, purchase.shortfall_minor) == (5900, 4000)
    assert account().balance_minor == 0
    assert account().status == AccountStatus.SUSPENDED


def test_a_reversed_refund_gives_back_what_was_taken(app_store, client, api, settings):
    settings.BILLING_FREE_USES = 0
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    api.post(
        "/v1/billing/charges",
        charge_body({"oauth_provider": "oauth:apple", "external_id": SUB}, "spend-1", amount=4000),
        format="json",
    )
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=later(1)), "reversed")

    delivered(app_store, client, app_store.notice(transaction_id, "REFUND_REVERSED", at=later(2)), "given_back")

    assert account().balance_minor == 5900  # what the refund took; the 4000 it could not take stays spent
    purchase = row(transaction_id)
    assert (purchase.state, purchase.reversed_minor, purchase.shortfall_minor) == (PurchaseState.CREDITED, 0, 0)
    assert LedgerEntry.objects.get(kind=EntryKind.REFUND_REVERSAL).balance_delta_minor == 5900

    # and a second refund after that takes it back again
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=later(3)), "reversed")
    assert account().balance_minor == 0


def test_an_older_refund_arriving_after_a_newer_reversal_changes_nothing(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    refund, reversal = (
        app_store.notice(transaction_id, "REFUND", at=later(1)),
        app_store.notice(transaction_id, "REFUND_REVERSED", at=later(2)),
    )
    delivered(app_store, client, reversal, "unchanged")  # newest news: not revoked, as it was
    delivered(app_store, client, refund, "stale")  # older than what the purchase holds

    assert account().balance_minor == 9900


def test_a_refund_before_any_verify_means_the_transaction_is_never_credited(app_store, client):
    transaction_id = app_store.buy()
    app_store.set_truth(transaction_id, revoked=True)

    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=T1), "before_credit")
    body = verify(app_store, transaction_id)

    assert (body["success"], body["code"]) == (False, "purchase_voided")
    assert account().balance_minor == 0
    assert not LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).exists()


def test_a_refund_reversed_after_a_refused_verify_credits_the_account_that_verified(app_store, client):
    transaction_id = app_store.buy()
    app_store.set_truth(transaction_id, revoked=True)
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=T1), "before_credit")
    assert verify(app_store, transaction_id)["success"] is False

    app_store.set_truth(transaction_id, revoked=False)
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND_REVERSED", at=later(1)), "credited")

    assert account().balance_minor == 9900
    assert verify(app_store, transaction_id)["already_processed"] is True


def test_a_verify_whose_lookup_is_newer_and_not_revoked_credits_a_refunded_then_restored_transaction(app_store, client):
    transaction_id = app_store.buy()
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=T1), "before_credit")

    body = verify(app_store, transaction_id)  # Apple's lookup, signed now: not revoked

    assert (body["success"], body["credits_added"]) == (True, 99)
    assert account().balance_minor == 9900


def test_a_notification_delivered_twice_is_handled_once(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    notice_id = str(uuid.uuid4())
    refund = app_store.notice(transaction_id, "REFUND", at=later(1), uuid=notice_id)

    delivered(app_store, client, refund, "reversed")
    delivered(app_store, client, refund, "duplicate")

    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1
    assert StoreNotification.objects.get(store=Store.APP_STORE, message_id=notice_id).outcome == "reversed"


@pytest.mark.parametrize("kind", ["CONSUMPTION_REQUEST", "TEST", "ONE_TIME_CHARGE"])
def test_other_notification_types_are_200_and_ignored(app_store, client, kind):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)

    delivered(app_store, client, app_store.notice(transaction_id, kind), "ignored")

    assert account().balance_minor == 9900


# --- refused: nothing changes ---------------------------------------------------------------


def refused(app_store, client, signed_payload: str, status: int) -> None:
    response = app_store.notify(client, signed_payload)
    assert response.status_code == status, response.content
    assert set(response.json()) >= {"detail", "code"}


def test_a_notification_signed_by_another_chain_is_401_and_changes_nothing(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    forger = CertificateChain("Forger")
    forged = app_store.fake.notification(
        "REFUND", forger.sign(app_store.fake.transaction_payload(transaction_id, fixtures.CREDITS_100, revoked=True))
    )
    fully_forged = app_store.fake.notification(
        "REFUND",
        forger.sign(app_store.fake.transaction_payload(transaction_id, fixtures.CREDITS_100, revoked=True)),
        chain=forger,
    )

    refused(app_store, client, forged, 401)  # Apple's envelope, a forged transaction inside
    refused(app_store, client, fully_forged, 401)

    assert account().balance_minor == 9900
    assert not StoreNotification.objects.exists()


def test_an_unsigned_notification_is_401_and_changes_nothing(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    claims = jwt.decode(app_store.notice(transaction_id, "REFUND", at=later(1)), options={"verify_signature": False})

    refused(app_store, client, jwt.encode(claims, key=None, algorithm="none"), 401)
    refused(app_store, client, "not.a.jws", 401)

    assert account().balance_minor == 9900


def test_a_notification_for_another_bundle_or_environment_is_401(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)

    refused(app_store, client, app_store.notice(transaction_id, "REFUND", bundle_id="com.example.other"), 401)
    refused(app_store, client, app_store.notice(transaction_id, "REFUND", environment=SANDBOX), 401)

    assert account().balance_minor == 9900
    assert not StoreNotification.objects.exists()


@pytest.mark.parametrize("body", [{}, {"signedPayload": ""}, {"signedPayload": None}, ["x"]])
def test_a_body_that_is_not_a_notification_is_400(app_store, client, body):
    response = client.post(fixtures.WEBHOOK_URL, json.dumps(body), content_type="application/json")

    assert response.status_code == 400


def test_notifications_answer_503_when_the_app_store_is_not_configured(app_store, client, settings):
    transaction_id = app_store.buy()
    settings.APPLE_STOREKIT_BUNDLE_ID = ""

    response = app_store.notify(client, app_store.notice(transaction_id, "REFUND", at=later(1)))

    assert response.status_code == 503


def test_notifications_are_counted_by_store_and_outcome(app_store, client):
    from stores.metrics import STORE_NOTIFICATIONS

    def count(outcome: str) -> float:
        return STORE_NOTIFICATIONS.labels(store="app_store", outcome=outcome)._value.get()

    before = count("reversed"), count("ignored")
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=later(1)), "reversed")
    delivered(app_store, client, app_store.notice(transaction_id, "TEST"), "ignored")

    assert (count("reversed"), count("ignored")) == (before[0] + 1, before[1] + 1)


def test_ledger_and_balance_agree_after_take_back_and_give_back(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=later(1)), "reversed")
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND_REVERSED", at=later(2)), "given_back")

    assert ledger_sum() == account().balance_minor == 9900


def test_a_refund_is_a_refund_even_if_its_transaction_carries_no_revocation_date(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    unrevoked = app_store.news_transaction(transaction_id, revoked=False, at=later(1))

    delivered(app_store, client, app_store.fake.notification("REFUND", unrevoked), "reversed")

    assert account().balance_minor == 0


def test_the_walk_through_refund_and_its_reversal_through_the_fakes_own_endpoints(app_store, client):
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)

    for action, outcome, balance in (("refund", "reversed", 0), ("refund-reversed", "given_back", 9900)):
        request = urllib.request.Request(f"{app_store.fake.url}/_fake/{action}/{transaction_id}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        delivered(app_store, client, body["signedPayload"], outcome)
        assert account().balance_minor == balance
    # and the lookup follows: a verify now agrees
    assert verify(app_store, transaction_id)["already_processed"] is True


def test_a_refund_of_a_purchase_spent_entirely_and_its_reversal_move_nothing_but_record_it(
    app_store, client, api, settings
):
    settings.BILLING_FREE_USES = 0
    transaction_id = app_store.buy()
    verify(app_store, transaction_id)
    identity = {"oauth_provider": "oauth:apple", "external_id": SUB}
    assert api.post("/v1/billing/charges", charge_body(identity, "all", amount=9900), format="json").status_code == 201

    delivered(app_store, client, app_store.notice(transaction_id, "REFUND", at=later(1)), "reversed")
    assert (row(transaction_id).reversed_minor, row(transaction_id).shortfall_minor) == (0, 9900)
    delivered(app_store, client, app_store.notice(transaction_id, "REFUND_REVERSED", at=later(2)), "given_back")

    assert account().balance_minor == 0
    assert row(transaction_id).state == PurchaseState.CREDITED
    assert ledger_sum() == 0

"""Twenty parallel verifications of one Play purchase token, over HTTP, each on its own
PostgreSQL connection: the token is credited once (the unique constraint inside the credit
transaction decides), every caller of its account hears 200, and the ledger agrees; a
refund racing the verifications ends with no credit, whichever wins."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from stores.models import StorePurchase
from tests.concurrency import run_in_parallel
from tests.factories import create_api_key
from tests.google_play import PUBSUB_ACCOUNT, PUBSUB_AUDIENCE, VERIFY_URL, WEBHOOK_URL, verify_body

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def post(url: str, key: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "X-API-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_twenty_parallel_verifies_of_one_token_credit_it_once(live_server, play):
    key = create_api_key(permissions="read,write")
    user = {"oauth_provider": "oauth:google", "external_id": "parallel-buyer"}
    token = play.buy("credits_100")

    results = run_in_parallel(20, lambda _: post(live_server.url + VERIFY_URL, key, verify_body(user, token)))

    assert [status for status, _ in results] == [200] * 20
    assert sum(1 for _, body in results if body["already_processed"] is False) == 1
    assert {body["credits_added"] for _, body in results} == {99}
    account = Account.objects.get(external_id="parallel-buyer")
    assert account.balance_minor == 99 * 100
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.PURCHASE).count() == 1
    assert sum(LedgerEntry.objects.filter(account=account).values_list("balance_delta_minor", flat=True)) == 9900
    assert StorePurchase.objects.filter(purchase_token=token).count() == 1
    assert play.fake.consumed(token)


def test_parallel_verifies_of_one_token_from_two_accounts_credit_one_of_them(live_server, play):
    key = create_api_key(permissions="read,write")
    token = play.buy("credits_250")
    users = [{"oauth_provider": "oauth:google", "external_id": f"rival-{i % 2}"} for i in range(10)]

    results = run_in_parallel(
        10, lambda i: post(live_server.url + VERIFY_URL, key, verify_body(users[i], token, "credits_250"))
    )

    statuses = sorted(status for status, _ in results)
    assert set(statuses) <= {200, 409}
    assert statuses.count(409) == 5  # every call of the account that lost
    assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).count() == 1
    assert sum(Account.objects.values_list("balance_minor", flat=True)) == 249 * 100


def test_a_refund_racing_the_verifies_ends_with_no_credit(live_server, play):
    key = create_api_key(permissions="read,write")
    user = {"oauth_provider": "oauth:google", "external_id": "racing-refund"}
    token = play.buy("credits_100")
    play.fake.void(token)
    oidc = play.fake.mint_pubsub_token(aud=PUBSUB_AUDIENCE, email=PUBSUB_ACCOUNT)
    data = base64.b64encode(json.dumps({"voidedPurchaseNotification": {"purchaseToken": token}}).encode()).decode()

    def deliver(i: int) -> int:
        if i % 2:
            return post(live_server.url + VERIFY_URL, key, verify_body(user, token))[0]
        push = urllib.request.Request(
            live_server.url + WEBHOOK_URL,
            data=json.dumps({"message": {"data": data, "messageId": f"m{i}"}}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {oidc}"},
        )
        with urllib.request.urlopen(push, timeout=60) as response:
            return response.status

    statuses = run_in_parallel(12, deliver)

    assert set(statuses) <= {200, 400}
    assert StorePurchase.objects.get(purchase_token=token).state == "voided"
    account = Account.objects.filter(external_id="racing-refund").first()
    assert account is None or account.balance_minor == 0
    credits = LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).count()
    assert credits == LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() <= 1

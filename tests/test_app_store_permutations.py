"""Every delivery order of the news about one App Store purchase ends in the same balance.

Apple's lookup (the fake's) holds the final truth and signs each answer when it gives it;
the notifications carry increasing signedDates. Verify, a replay of the verify, the refund
and its reversal (or a redelivery of the refund) are applied in every order, each order on
its own purchase and account: the balance, the ledger's sum and the row's state come out the
same each time.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.models import Account
from ledger.models import LedgerEntry
from stores.models import PurchaseState, Store, StorePurchase
from tests import app_store as fixtures
from tests.app_store import USER_VERIFY_URL, WEBHOOK_URL

apple, app_store = fixtures.apple, fixtures.app_store

pytestmark = pytest.mark.django_db


def outcome_of(order: tuple[str, ...], app_store, *, revoked_at_the_end: bool, notices: dict[str, str]) -> tuple:
    """Deliver `order` for a fresh purchase and account; return what the account ends with."""
    sub = f"perm-{uuid.uuid4().hex[:12]}"
    transaction_id = app_store.buy()
    start = int(time.time() * 1000) - 60_000  # all news signed before the lookups (signed now)
    payloads = {
        name: app_store.notice(transaction_id, kind, at=start + offset, uuid=str(uuid.uuid4()))
        for name, (kind, offset) in notices.items()
    }
    payloads["redelivery"] = payloads[next(iter(notices))]
    app_store.set_truth(transaction_id, revoked=revoked_at_the_end)
    user = app_store.user_client(sub)
    apple_client = APIClient()

    def verify() -> None:
        response = user.post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json")
        assert response.status_code == 200, response.content

    def deliver(name: str) -> Callable[[], None]:
        def send() -> None:
            body = json.dumps({"signedPayload": payloads[name]})
            response = apple_client.post(WEBHOOK_URL, body, content_type="application/json")
            assert response.status_code == 200, response.content

        return send

    steps = {"verify": verify, "replay": verify, **{name: deliver(name) for name in payloads}}
    for step in order:
        steps[step]()
    account = Account.objects.get(oauth_provider="oauth:apple", external_id=sub)
    ledger = sum(LedgerEntry.objects.filter(account=account).values_list("balance_delta_minor", flat=True))
    purchase = StorePurchase.objects.get(store=Store.APP_STORE, purchase_token=transaction_id)
    return account.balance_minor, ledger, purchase.state, purchase.account_id == account.pk


REFUNDED_THEN_REVERSED = {"refund": ("REFUND", 1_000), "reversal": ("REFUND_REVERSED", 2_000)}
REFUNDED = {"refund": ("REFUND", 1_000)}


def test_refund_and_reversal_in_every_order_end_credited(app_store):
    events = ("verify", "replay", "refund", "reversal")
    outcomes = {
        order: outcome_of(order, app_store, revoked_at_the_end=False, notices=REFUNDED_THEN_REVERSED)
        for order in itertools.permutations(events)
    }

    assert set(outcomes.values()) == {(9900, 9900, PurchaseState.CREDITED, True)}, outcomes
    assert len(outcomes) == 24


def test_a_refund_in_every_order_ends_never_credited(app_store):
    events = ("verify", "replay", "refund", "redelivery")
    outcomes = {
        order: outcome_of(order, app_store, revoked_at_the_end=True, notices=REFUNDED)
        for order in itertools.permutations(events)
    }

    # The same user verified each time: the purchase is theirs, voided, and nothing was credited.
    assert set(outcomes.values()) == {(0, 0, PurchaseState.VOIDED, True)}, outcomes
    assert len(outcomes) == 24


def test_news_applied_in_every_order_leaves_the_newest(app_store, client):
    """Without a verify in between: the row ends holding the newest news, whichever came last."""
    for order in itertools.permutations(("refund", "reversal", "refund_again")):
        transaction_id = app_store.buy()
        start = int(time.time() * 1000) + 10_000
        kinds = {"refund": ("REFUND", 1), "reversal": ("REFUND_REVERSED", 2), "refund_again": ("REFUND", 3)}
        for name in order:
            kind, step = kinds[name]
            app_store.notify(client, app_store.notice(transaction_id, kind, at=start + step * 1000))
        purchase = StorePurchase.objects.get(store=Store.APP_STORE, purchase_token=transaction_id)
        assert purchase.store_revoked is True, order
        assert int(purchase.news_signed_at.timestamp() * 1000) == start + 3000, order

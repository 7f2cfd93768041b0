"""manage.py reconcile checks App Store purchases, refunded and restored any number of times."""

from __future__ import annotations

import time

import pytest

from backoffice.reconcile import reconcile
from ledger.models import EntryKind, LedgerEntry
from stores.models import Store, StorePurchase
from tests import app_store as fixtures
from tests.app_store import USER_VERIFY_URL
from tests.conftest import charge_body

apple, app_store = fixtures.apple, fixtures.app_store

pytestmark = pytest.mark.django_db

SUB = "001234.abcd.5678"


def later(seconds: int) -> int:
    return int(time.time() * 1000) + seconds * 1000


@pytest.fixture
def app_store_history(app_store, client, api, settings):
    """A purchase kept; one refunded, restored and refunded again after part was spent; one
    refunded before anyone verified it; one whose verify found it refunded."""
    settings.BILLING_FREE_USES = 0
    kept, churned, early, refused = (app_store.buy() for _ in range(4))
    phone = app_store.user_client(SUB)
    for transaction_id in (kept, churned):
        assert phone.post(USER_VERIFY_URL, {"transaction_id": transaction_id}, format="json").json()["success"]
    spend = charge_body({"oauth_provider": "oauth:apple", "external_id": SUB}, "spend", amount=15000)
    assert api.post("/v1/billing/charges", spend, format="json").status_code == 201
    for step, kind in enumerate(("REFUND", "REFUND_REVERSED", "REFUND"), start=1):
        assert app_store.notify(client, app_store.notice(churned, kind, at=later(step))).status_code == 200
    assert app_store.notify(client, app_store.notice(early, "REFUND", at=later(1))).status_code == 200
    app_store.set_truth(refused, revoked=True)
    assert not phone.post(USER_VERIFY_URL, {"transaction_id": refused}, format="json").json()["success"]
    return {"kept": kept, "churned": churned, "early": early, "refused": refused}


def row(transaction_id: str) -> StorePurchase:
    return StorePurchase.objects.get(store=Store.APP_STORE, purchase_token=transaction_id)


def test_app_store_purchases_refunded_and_restored_reconcile_cleanly(app_store_history):
    assert row(app_store_history["churned"]).shortfall_minor > 0
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 2
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND_REVERSAL).count() == 1

    assert reconcile() == []


def test_a_row_whose_reversal_disagrees_with_the_ledger_is_found(app_store_history):
    StorePurchase.objects.filter(pk=row(app_store_history["churned"]).pk).update(state="credited")

    found = reconcile()

    assert [f.check for f in found] == ["store_purchase"]
    assert "add up to" in found[0].detail


def test_a_restoration_no_purchase_names_is_found(app_store_history):
    entry = LedgerEntry.objects.get(kind=EntryKind.REFUND_REVERSAL)
    LedgerEntry.objects.filter(pk=entry.pk).update(
        details={**entry.details, "store_purchase_id": "00000000-0000-0000-0000-000000000000"}
    )

    checks = [f.check for f in reconcile()]

    assert "store_entry_without_purchase" in checks

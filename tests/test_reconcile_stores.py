"""manage.py reconcile checks store purchases and their reversals against the ledger."""

from __future__ import annotations

import pytest

from backoffice.reconcile import reconcile
from stores.models import StorePurchase
from tests.google_play import VERIFY_URL, verify_body

pytestmark = pytest.mark.django_db

TOOL_VERIFY_URL = "/v1/tools/purchase/verify"


@pytest.fixture
def store_history(api, user, play):
    """A credit pack kept, one refunded after part of it was spent, a tool pack, one voided early."""
    kept, refunded, early = play.buy(), play.buy(), play.buy()
    for token in (kept, refunded):
        assert api.post(VERIFY_URL, verify_body(user, token), format="json").status_code == 200
    for key, amount in (("f1", 100), ("f2", 100), ("f3", 100), ("big", 15000)):  # three free uses first
        charge = {**user, "amount_minor": amount, "currency": "USD", "idempotency_key": key}
        assert api.post("/v1/billing/charges", charge, format="json").status_code == 201
    play.void_notice(api, refunded)
    play.void_notice(api, early)
    phone = play.signed_in()
    pack = play.buy("web_search_10")
    assert (
        phone.post(
            TOOL_VERIFY_URL, {"product_id": "web_search_10", "purchase_token": pack, "tool_name": "web_search"}
        ).status_code
        == 200
    )
    return {"kept": kept, "refunded": refunded, "early": early, "pack": pack}


def test_store_purchases_and_their_reversals_reconcile_cleanly(store_history):
    assert StorePurchase.objects.get(purchase_token=store_history["refunded"]).shortfall_minor > 0
    assert reconcile() == []


def test_a_store_credit_the_row_disagrees_with_is_found(store_history):
    StorePurchase.objects.filter(purchase_token=store_history["kept"]).update(credit_minor=1)

    found = reconcile()

    assert [f.check for f in found] == ["store_purchase"]
    assert "the row says 1" in found[0].detail


def test_a_reversal_that_took_other_than_recorded_is_found(store_history):
    StorePurchase.objects.filter(purchase_token=store_history["refunded"]).update(shortfall_minor=0)

    assert [f.check for f in reconcile()] == ["store_purchase"]


def test_a_store_credit_no_purchase_holds_is_found_with_its_fix(store_history):
    StorePurchase.objects.filter(purchase_token=store_history["kept"]).update(credit_entry=None, state="voided")

    checks = {f.check: f for f in reconcile()}

    assert "store_entry_without_purchase" in checks
    assert "grant_credits" in checks["store_entry_without_purchase"].fixes[0]


def test_tool_pack_uses_changed_outside_the_ledger_are_found(store_history):
    from tools.models import ToolAllowance

    ToolAllowance.objects.update(purchased_remaining=99)

    assert "tool_allowance" in [f.check for f in reconcile()]

"""Tool packs bought in Google Play (POST /v1/tools/purchase/verify, user token only): purchased
uses spent after the free allowance and before the main balance, never capped, shown as
purchased_remaining; and the Play verify route with a user's ID token."""

from __future__ import annotations

import pytest

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from stores.models import StorePurchase
from tests.google_play import VERIFY_URL, verify_body
from tools.models import ToolAllowance
from tools.reconcile import check_tool_allowances

pytestmark = pytest.mark.django_db

TOOL_VERIFY_URL = "/v1/tools/purchase/verify"


def pack_body(token: str, product_id: str = "web_search_10", tool_name: str = "web_search") -> dict[str, str]:
    """The agent's body (routes/tools.py)."""
    return {"product_id": product_id, "purchase_token": token, "tool_name": tool_name}


def test_a_tool_pack_adds_purchased_uses_shown_in_the_tool_balance(play):
    phone = play.signed_in()
    token = play.buy("web_search_10")

    response = phone.post(TOOL_VERIFY_URL, pack_body(token), format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "success": True,
        "product_type": "web_search",
        "credits_added": 10,
        "new_balance": 20,  # 10 free + 10 bought, no paid balance
        "message": "Added 10 web_search uses.",
    }
    balance = phone.get("/v1/tools/balance/web_search").json()
    assert balance["purchased_remaining"] == 10
    assert balance["total_available"] == 20
    check = phone.get("/v1/tools/check/web_search").json()
    assert (check["purchased_remaining"], check["total_available"], check["has_credit"]) == (10, 20, True)
    assert play.fake.consumed(token)


def test_a_replayed_tool_pack_is_409_and_adds_nothing(play):
    phone = play.signed_in()
    token = play.buy("web_search_10")
    phone.post(TOOL_VERIFY_URL, pack_body(token), format="json")

    again = phone.post(TOOL_VERIFY_URL, pack_body(token), format="json")

    assert again.status_code == 409
    assert again.json()["detail"] == "Purchase already processed"
    assert phone.get("/v1/tools/balance/web_search").json()["purchased_remaining"] == 10


def test_the_tool_pack_route_refuses_api_keys(api, play):
    response = api.post(TOOL_VERIFY_URL, pack_body(play.buy("web_search_10")), format="json")

    assert response.status_code == 403
    assert not StorePurchase.objects.exists()


@pytest.mark.parametrize(
    ("product_id", "tool_name"), [("credits_100", "web_search"), ("web_search_10", "image_gen"), ("nope", "web_search")]
)
def test_a_pack_that_is_not_for_that_tool_is_422(play, product_id, tool_name):
    response = play.signed_in().post(TOOL_VERIFY_URL, pack_body(play.buy(product_id), product_id, tool_name))

    assert response.status_code == 422
    assert not StorePurchase.objects.exists()


def test_purchased_uses_are_spent_after_the_free_ones_and_before_the_balance(api, play):
    sub = "104300000000000000001"
    phone = play.signed_in(sub)
    phone.post(TOOL_VERIFY_URL, pack_body(play.buy("web_search_10")), format="json")
    phone.post(VERIFY_URL, verify_body({}, play.buy("credits_100")), format="json")  # 99 uses of balance
    user = {"oauth_provider": "oauth:google", "external_id": sub}
    account = Account.objects.get(external_id=sub)
    balance_before = account.balance_minor

    results = []
    for i in range(21):
        body = {**user, "product_type": "web_search", "idempotency_key": f"s{i}"}
        charge = api.post("/v1/tools/charge", body, format="json").json()
        results.append((charge["used_free"], charge["cost_minor"]))

    assert results[:10] == [(True, 0)] * 10  # the free allowance first
    assert results[10:20] == [(False, 0)] * 10  # then the pack, at no cost to the balance
    assert results[20] == (False, 100)  # then the main balance
    account.refresh_from_db()
    assert account.balance_minor == balance_before - 100
    allowance = ToolAllowance.objects.get(account=account)
    assert allowance.purchased_remaining == 0
    assert check_tool_allowances() == []


def test_purchased_uses_are_never_capped_by_the_daily_top_up(play):
    phone = play.signed_in()
    for _ in range(3):
        assert phone.post(TOOL_VERIFY_URL, pack_body(play.buy("web_search_10")), format="json").status_code == 200

    balance = phone.get("/v1/tools/balance/web_search").json()

    assert balance["purchased_remaining"] == 30
    assert balance["total_available"] == 40  # the free cap (13) limits only the free uses


def test_a_refunded_tool_pack_takes_back_the_uses_left_and_records_the_rest(api, play):
    sub = "104300000000000000002"
    phone = play.signed_in(sub)
    token = play.buy("web_search_10")
    phone.post(TOOL_VERIFY_URL, pack_body(token), format="json")
    user = {"oauth_provider": "oauth:google", "external_id": sub}
    for i in range(14):  # 10 free, then 4 of the pack
        api.post("/v1/tools/charge", {**user, "product_type": "web_search", "idempotency_key": f"r{i}"}, format="json")

    play.void_notice(api, token)

    purchase = StorePurchase.objects.get(purchase_token=token)
    assert (purchase.reversed_uses, purchase.shortfall_uses) == (6, 4)
    assert phone.get("/v1/tools/balance/web_search").json()["purchased_remaining"] == 0
    assert check_tool_allowances() == []


def test_a_user_token_verifies_its_own_purchase_whatever_the_body_names(play):
    sub = "104300000000000000003"
    phone = play.signed_in(sub, email="phone-user@example.com")
    someone_else = {"oauth_provider": "oauth:google", "external_id": "victim@example.com"}

    response = phone.post(VERIFY_URL, verify_body(someone_else, play.buy()), format="json")

    assert response.status_code == 200
    account = Account.objects.get(external_id=sub)
    assert response.json()["account_id"] == str(account.pk)
    assert account.balance_minor == 9900
    assert account.email == "phone-user@example.com"
    assert not Account.objects.filter(external_id="victim@example.com").exists()


def test_a_user_token_replays_and_gets_409_for_another_users_token(play):
    token = play.buy()
    mine, theirs = play.signed_in(), play.signed_in()
    assert mine.post(VERIFY_URL, verify_body({}, token), format="json").status_code == 200

    assert mine.post(VERIFY_URL, verify_body({}, token), format="json").json()["already_processed"] is True
    assert theirs.post(VERIFY_URL, verify_body({}, token), format="json").status_code == 409
    assert LedgerEntry.objects.filter(kind=EntryKind.PURCHASE).count() == 1


def test_tool_packs_without_a_configured_package_are_503(play, settings):
    settings.GOOGLE_PLAY_PACKAGE_NAMES = []

    response = play.signed_in().post(TOOL_VERIFY_URL, pack_body(play.buy("web_search_10")), format="json")

    assert response.status_code == 503

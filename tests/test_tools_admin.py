"""Tool credits in the back office: products editable with permission, allowances read-only,
free uses granted through a confirmation form that needs tools.grant_tool_allowance."""

from __future__ import annotations

import pytest
from django.test import Client

from ledger.models import EntryKind, LedgerEntry
from tests.factories import AccountFactory, staff_user, tool_product
from tools.models import ToolAllowance, ToolProduct

pytestmark = pytest.mark.django_db

VIEW = ("tools.view_toolproduct", "tools.view_toolallowance", "tools.view_toolcharge", "accounts.view_account")
GRANT_URL = "/admin/tools/toolallowance/grant/"


def login(*permissions: str) -> Client:
    client = Client()
    client.force_login(staff_user("support", permissions=permissions))
    return client


@pytest.fixture
def web_search(db) -> ToolProduct:
    return tool_product("web_search")


@pytest.fixture
def used(api, user, web_search) -> ToolAllowance:
    api.post("/v1/tools/charge", {**user, "product_type": "web_search", "idempotency_key": "s-1"}, format="json")
    return ToolAllowance.objects.get()


def product_form(**changes: object) -> dict:
    return {
        "name": "Web search",
        "price_minor": "",
        "free_initial": 10,
        "free_daily_topup": 3,
        "free_cap": 13,
        "active": "on",
        **changes,
    }


def test_staff_with_the_permission_change_a_products_price_and_allowance(web_search):
    client = login(*VIEW, "tools.change_toolproduct")

    response = client.post(
        f"/admin/tools/toolproduct/{web_search.pk}/change/", product_form(price_minor=25, free_cap=20)
    )

    assert response.status_code == 302
    web_search.refresh_from_db()
    assert (web_search.price_minor, web_search.free_cap, web_search.product_type) == (25, 20, "web_search")


def test_a_new_product_is_an_admin_change(db):
    client = login(*VIEW, "tools.add_toolproduct")

    response = client.post("/admin/tools/toolproduct/add/", {**product_form(), "product_type": "image_gen"})

    assert response.status_code == 302
    assert ToolProduct.objects.get(product_type="image_gen").free_initial == 10


def test_a_product_type_must_be_lower_case_letters_digits_and_underscores(db):
    client = login(*VIEW, "tools.add_toolproduct")

    response = client.post("/admin/tools/toolproduct/add/", {**product_form(), "product_type": "Image Gen"})

    assert response.status_code == 200
    assert not ToolProduct.objects.filter(product_type="Image Gen").exists()


def test_staff_without_the_permission_cannot_change_products(web_search):
    client = login(*VIEW)

    response = client.post(f"/admin/tools/toolproduct/{web_search.pk}/change/", product_form(price_minor=1))

    assert response.status_code == 403
    web_search.refresh_from_db()
    assert web_search.price_minor is None


def test_allowances_are_listed_read_only(used):
    client = login(*VIEW)

    listing = client.get("/admin/tools/toolallowance/")
    detail = client.get(f"/admin/tools/toolallowance/{used.pk}/change/")

    assert listing.status_code == 200
    assert used.account.external_id in listing.content.decode()
    assert detail.status_code == 200
    assert b'name="free_remaining"' not in detail.content
    assert "Grant free tool uses" not in listing.content.decode()


def test_a_grant_to_an_account_goes_through_the_service_once(web_search):
    account = AccountFactory()
    client = login(*VIEW, "tools.grant_tool_allowance")
    form = client.get(GRANT_URL, {"account_id": str(account.pk), "product": "web_search"})
    key = form.context["form"]["idempotency_key"].value()
    post = {
        "account_id": str(account.pk),
        "product": "web_search",
        "free_uses": 4,
        "reason": "Support ticket 9",
        "idempotency_key": key,
        "confirm": "1",
    }

    first = client.post(GRANT_URL, post)
    client.post(GRANT_URL, post)  # the same page submitted twice

    assert first.status_code == 302
    allowance = ToolAllowance.objects.get(account=account)
    assert allowance.free_remaining == 10 + 4
    grant = LedgerEntry.objects.get(account=account, kind=EntryKind.TOOL_GRANT, details__source="staff")
    assert (grant.actor, grant.reason, grant.details["free_delta"]) == ("staff:support", "Support ticket 9", 4)


def test_the_grant_action_on_selected_allowances_asks_for_confirmation(used):
    client = login(*VIEW, "tools.grant_tool_allowance")

    page = client.post("/admin/tools/toolallowance/", {"action": "grant_free_uses", "_selected_action": [str(used.pk)]})
    key = page.context["form"]["idempotency_key"].value()
    done = client.post(
        GRANT_URL, {"ids": str(used.pk), "free_uses": 2, "reason": "r", "idempotency_key": key, "confirm": "1"}
    )

    assert page.status_code == 200 and used.account.external_id in page.content.decode()
    assert done.status_code == 302
    used.refresh_from_db()
    assert used.free_remaining == 9 + 2


def test_granting_needs_the_permission(web_search):
    account = AccountFactory()
    client = login(*VIEW)

    response = client.post(
        GRANT_URL,
        {
            "account_id": str(account.pk),
            "product": "web_search",
            "free_uses": 4,
            "reason": "r",
            "idempotency_key": "admin:x",
            "confirm": "1",
        },
    )

    assert response.status_code == 403
    assert not ToolAllowance.objects.exists()


def test_an_unknown_account_is_a_form_error(web_search):
    client = login(*VIEW, "tools.grant_tool_allowance")

    response = client.post(
        GRANT_URL,
        {
            "account_id": "00000000-0000-0000-0000-000000000000",
            "product": "web_search",
            "free_uses": 4,
            "reason": "r",
            "idempotency_key": "admin:x",
            "confirm": "1",
        },
    )

    assert response.status_code == 200
    assert "No such account." in response.content.decode()


def test_forged_allowance_ids_in_the_grant_form_are_ignored_not_a_500(used):
    client = login(*VIEW, "tools.grant_tool_allowance")

    page = client.post(GRANT_URL, {"ids": f"\u00b2,{used.pk}x,99999999999999999999999,\u0663"})

    assert page.status_code == 200  # the form for one account and product: nothing selected

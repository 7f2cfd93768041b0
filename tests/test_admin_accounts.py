"""The accounts admin: find accounts, see their ledger, and move money only through actions."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from ledger.models import EntryKind, LedgerEntry
from tests.conftest import charge_body
from tests.factories import SUPPORT_PERMISSIONS, funded_account, paid_purchase, staff_user

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/account/"


def action_url(account: Account, action: str) -> str:
    return f"/admin/accounts/account/{account.pk}/actions/{action}/"


@pytest.fixture
def support() -> Client:
    client = Client()
    client.force_login(staff_user("support", permissions=SUPPORT_PERMISSIONS))
    return client


@pytest.fixture
def viewer() -> Client:
    """Staff who may look at accounts but hold neither money nor status permission."""
    client = Client()
    client.force_login(
        staff_user("viewer", permissions=("accounts.view_account", "ledger.view_ledgerentry", "charges.view_charge"))
    )
    return client


@pytest.fixture
def account(user: dict) -> Account:
    return funded_account({**user, "tenant_id": "acme"}, uses=2)


def form_key(response) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', response.content.decode()).group(1)


def test_the_list_shows_free_uses_credits_uses_status_and_plan(support, account):
    response = support.get(CHANGELIST)

    assert response.status_code == 200
    row = re.search(r"<tr.*?</tr>", response.content.decode().split("<tbody>")[1], re.S).group(0)
    assert account.external_id in row
    assert ">3<" in row  # free uses
    assert ">2<" in row  # credits, in uses
    assert "pro" in row and "active" in row.lower()


@pytest.mark.parametrize("field", ["external_id", "email", "pk", "tenant_id"])
def test_accounts_are_found_by_external_id_email_id_and_tenant(support, field):
    target = funded_account({"oauth_provider": "oauth:google", "external_id": "findme@example.com", "tenant_id": "t9"})
    Account.objects.filter(pk=target.pk).update(email="billing-contact@example.org")
    other = funded_account({"oauth_provider": "oauth:google", "external_id": "other@example.com"})
    term = {
        "external_id": "findme",
        "email": "billing-contact",
        "pk": str(target.pk),
        "tenant_id": "t9",
    }[field]

    response = support.get(CHANGELIST, {"q": term})

    assert response.status_code == 200
    assert str(target.pk) in response.content.decode()
    assert str(other.pk) not in response.content.decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"status": "suspended"}, "sus"), ({"plan": "free"}, "free"), ({"plan": "pro"}, "pro"), ({"tenant": "t1"}, "t1")],
)
def test_filters_narrow_the_list(support, params, expected):
    accounts = {
        "sus": funded_account({"oauth_provider": "oauth:google", "external_id": "sus@example.com"}),
        "free": funded_account({"oauth_provider": "oauth:google", "external_id": "free@example.com"}),
        "pro": funded_account({"oauth_provider": "oauth:google", "external_id": "pro@example.com"}, uses=1),
        "t1": funded_account({"oauth_provider": "oauth:google", "external_id": "t1@example.com", "tenant_id": "t1"}),
    }
    account_set_status(account_id=accounts["sus"].pk, status=AccountStatus.SUSPENDED, reason="x", actor="test")

    body = support.get(CHANGELIST, params).content.decode()

    shown = {name for name, a in accounts.items() if f"/admin/accounts/account/{a.pk}/change/" in body}
    assert expected in shown
    if "plan" not in params or params["plan"] == "pro":
        assert shown == {expected}
    else:
        assert "pro" not in shown


def test_the_has_paid_filter_and_no_tenant_filter_work(support):
    free = funded_account({"oauth_provider": "oauth:google", "external_id": "a@example.com"})
    paying = funded_account(
        {"oauth_provider": "oauth:google", "external_id": "b@example.com", "tenant_id": "x"}, uses=1
    )

    paid_body = support.get(CHANGELIST, {"has_paid__exact": "1"}).content.decode()
    untenanted = support.get(CHANGELIST, {"tenant": "__none__"}).content.decode()

    assert str(paying.pk) in paid_body and str(free.pk) not in paid_body
    assert str(free.pk) in untenanted and str(paying.pk) not in untenanted


def test_balances_cannot_be_edited_on_the_account_page(support, account):
    page = support.get(f"/admin/accounts/account/{account.pk}/change/")
    posted = support.post(
        f"/admin/accounts/account/{account.pk}/change/", {"balance_minor": 999999, "free_uses_remaining": 99}
    )

    assert page.status_code == 200
    assert 'name="balance_minor"' not in page.content.decode()
    assert 'name="free_uses_remaining"' not in page.content.decode()
    assert posted.status_code == 403
    account.refresh_from_db()
    assert (account.balance_minor, account.free_uses_remaining) == (200, 3)
    assert support.get("/admin/accounts/account/add/").status_code == 403


def test_granting_uses_writes_a_ledger_entry_naming_the_staff_user(support, account):
    page = support.get(action_url(account, "grant-credits"))

    response = support.post(
        action_url(account, "grant-credits"),
        {"amount": 5, "unit": "uses", "kind": "grant", "reason": "Outage apology", "idempotency_key": form_key(page)},
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.balance_minor == 700
    entry = LedgerEntry.objects.filter(account=account).first()
    assert (entry.kind, entry.balance_delta_minor, entry.actor, entry.reason) == (
        EntryKind.GRANT,
        500,
        "staff:support",
        "Outage apology",
    )


def test_granting_minor_units_grants_exactly_that(support, account):
    page = support.get(action_url(account, "grant-credits"))

    support.post(
        action_url(account, "grant-credits"),
        {"amount": 150, "unit": "minor", "kind": "grant", "reason": "r", "idempotency_key": form_key(page)},
    )

    account.refresh_from_db()
    assert account.balance_minor == 350


def test_resubmitting_the_same_grant_form_grants_once(support, account):
    page = support.get(action_url(account, "grant-credits"))
    body = {"amount": 5, "unit": "uses", "kind": "grant", "reason": "r", "idempotency_key": form_key(page)}

    support.post(action_url(account, "grant-credits"), body)
    again = support.post(action_url(account, "grant-credits"), body, follow=True)

    account.refresh_from_db()
    assert account.balance_minor == 700
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.GRANT).count() == 2  # setup + this one
    assert "already granted" in again.content.decode()


def test_each_confirmation_page_has_its_own_key(support, account):
    assert form_key(support.get(action_url(account, "grant-credits"))) != form_key(
        support.get(action_url(account, "grant-credits"))
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"amount": 5, "unit": "uses", "kind": "grant", "reason": "  "}, "reason"),
        ({"amount": 0, "unit": "uses", "kind": "grant", "reason": "r"}, "cannot be zero"),
        ({"amount": -5, "unit": "uses", "kind": "grant", "reason": "r"}, "Only an adjustment"),
        ({"amount": "lots", "unit": "uses", "kind": "grant", "reason": "r"}, "whole number"),
    ],
)
def test_a_bad_grant_form_is_shown_again_and_grants_nothing(support, account, body, error):
    response = support.post(action_url(account, "grant-credits"), {**body, "idempotency_key": "admin:k"})

    assert response.status_code == 200
    assert error in response.content.decode() or "required" in response.content.decode()
    account.refresh_from_db()
    assert account.balance_minor == 200


def test_an_adjustment_may_take_credit_back_but_not_below_zero(support, account):
    ok = support.post(
        action_url(account, "grant-credits"),
        {"amount": -1, "unit": "uses", "kind": "adjustment", "reason": "over-grant", "idempotency_key": "admin:a"},
    )
    too_much = support.post(
        action_url(account, "grant-credits"),
        {"amount": -9, "unit": "uses", "kind": "adjustment", "reason": "x", "idempotency_key": "admin:b"},
        follow=True,
    )

    assert ok.status_code == 302
    assert "below zero" in too_much.content.decode()
    account.refresh_from_db()
    assert account.balance_minor == 100


def test_granting_free_uses(support, account):
    support.post(
        action_url(account, "grant-free-uses"), {"free_uses": 4, "reason": "beta", "idempotency_key": "admin:f"}
    )

    account.refresh_from_db()
    assert account.free_uses_remaining == 7
    assert LedgerEntry.objects.filter(account=account).first().free_uses_delta == 4


def test_suspending_blocks_charges_and_is_on_the_ledger(support, account, api, user):
    response = support.post(action_url(account, "suspend"), {"reason": "Chargeback fraud"})

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.status, account.status_reason) == (AccountStatus.SUSPENDED, "Chargeback fraud")
    entry = LedgerEntry.objects.filter(account=account).first()
    assert (entry.kind, entry.actor, entry.details) == (
        EntryKind.STATUS_CHANGE,
        "staff:support",
        {"from": "active", "to": "suspended"},
    )
    charge = api.post("/v1/billing/charges", charge_body({**user, "tenant_id": "acme"}, "k1"), format="json")
    assert charge.status_code == 403


def test_reactivating_and_closing(support, account):
    support.post(action_url(account, "suspend"), {"reason": "a"})
    support.post(action_url(account, "reactivate"), {"reason": "b"})
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE

    support.post(action_url(account, "close"), {"reason": "user asked"})
    reopened = support.post(action_url(account, "reactivate"), {"reason": "c"}, follow=True)

    account.refresh_from_db()
    assert account.status == AccountStatus.CLOSED
    assert "cannot become active" in reopened.content.decode()


def test_a_status_change_needs_a_reason(support, account):
    response = support.post(action_url(account, "suspend"), {"reason": ""})

    assert response.status_code == 200
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE


@pytest.mark.parametrize("action", ["grant-credits", "grant-free-uses", "suspend", "reactivate", "close"])
def test_staff_without_the_permission_are_refused(viewer, account, action):
    page = viewer.get(action_url(account, action))
    posted = viewer.post(
        action_url(account, action),
        {"amount": 5, "unit": "uses", "kind": "grant", "free_uses": 1, "reason": "r", "idempotency_key": "admin:x"},
    )

    assert page.status_code == 403
    assert posted.status_code == 403
    account.refresh_from_db()
    assert (account.balance_minor, account.free_uses_remaining, account.status) == (200, 3, "active")


def test_granting_needs_grant_credits_and_suspending_needs_suspend_account(account):
    granter, suspender = Client(), Client()
    granter.force_login(staff_user("g", permissions=("accounts.view_account", "accounts.grant_credits")))
    suspender.force_login(staff_user("s", permissions=("accounts.view_account", "accounts.suspend_account")))

    assert granter.get(action_url(account, "grant-credits")).status_code == 200
    assert granter.get(action_url(account, "suspend")).status_code == 403
    assert suspender.get(action_url(account, "suspend")).status_code == 200
    assert suspender.get(action_url(account, "grant-credits")).status_code == 403


def test_the_account_page_offers_only_the_permitted_actions(viewer, support, account):
    viewer_page = viewer.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()
    support_page = support.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()

    assert "action-grant-credits" not in viewer_page and "action-suspend" not in viewer_page
    assert "action-grant-credits" in support_page and "action-suspend" in support_page
    assert "action-reactivate" not in support_page  # already active


def test_bulk_actions_on_the_list_go_through_the_same_confirmation(support):
    accounts = [
        funded_account({"oauth_provider": "oauth:google", "external_id": f"b{i}@example.com"}) for i in range(2)
    ]

    page = support.post(CHANGELIST, {"action": "bulk_suspend", "_selected_action": [str(a.pk) for a in accounts]})
    ids = re.search(r'name="ids" value="([^"]+)"', page.content.decode()).group(1)
    done = support.post("/admin/accounts/account/actions/suspend/", {"ids": ids, "reason": "spam wave"})

    assert page.status_code == 200 and "2 accounts" in page.content.decode()
    assert 'action="/admin/accounts/account/actions/suspend/"' in page.content.decode()
    assert done.status_code == 302
    assert set(Account.objects.filter(pk__in=[a.pk for a in accounts]).values_list("status", flat=True)) == {
        "suspended"
    }


def test_a_bulk_action_on_150_accounts_keeps_the_ids_out_of_every_url(support):
    from tests.factories import AccountFactory

    accounts = AccountFactory.create_batch(150)
    selected = [str(a.pk) for a in accounts]

    page = support.post(CHANGELIST, {"action": "bulk_suspend", "_selected_action": selected})
    body = page.content.decode()
    ids = re.search(r'name="ids" value="([^"]+)"', body).group(1)
    done = support.post("/admin/accounts/account/actions/suspend/", {"ids": ids, "reason": "spam wave"})

    assert page.status_code == 200  # the confirmation itself, not a redirect carrying the ids
    assert "150 accounts" in body
    assert set(ids.split(",")) == set(selected)
    assert done.status_code == 302 and len(done["Location"]) < 100
    assert Account.objects.filter(status="suspended").count() == 150


def test_the_bulk_confirmation_url_needs_its_ids_posted(support, account):
    response = support.get(f"/admin/accounts/account/actions/suspend/?ids={account.pk}")

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE


def test_bulk_actions_are_not_offered_without_the_permission(viewer, account):
    body = viewer.get(CHANGELIST).content.decode()

    assert "bulk_suspend" not in body and "bulk_grant_credits" not in body


def test_the_account_page_shows_its_ledger_charges_and_purchases_with_links(support, account, api, user):
    api.post("/v1/billing/charges", charge_body({**user, "tenant_id": "acme"}, "c-1"), format="json")
    purchase = paid_purchase(account, payment_intent_id="pi_123")
    charge = account.charges.get()

    body = support.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()

    ledger = body.split('id="account-ledger"')[1].split('id="account-charges"')[0]
    kinds = re.findall(r'<tr class="ledger-row ledger-(\w+)">', ledger)
    assert kinds == ["purchase", "charge", "grant", "free_uses_granted"]  # newest first
    assert f"/admin/charges/charge/{charge.pk}/change/" in body
    assert f"/admin/purchases/purchase/{purchase.pk}/change/" in body
    assert "pi_123" in body


def test_the_ledger_on_the_account_page_is_paginated(support, account):
    for _ in range(30):
        funded_account(
            {"oauth_provider": account.oauth_provider, "external_id": account.external_id, "tenant_id": "acme"}, uses=1
        )

    first = support.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()
    second = support.get(f"/admin/accounts/account/{account.pk}/change/", {"ledger_page": 2}).content.decode()

    assert first.count('class="ledger-row') == 25
    assert second.count('class="ledger-row') == 7
    assert "page 1 of 2" in first


def test_unknown_actions_and_empty_selections_are_handled(support, account):
    assert support.get(action_url(account, "delete-everything")).status_code == 403
    assert support.get("/admin/accounts/account/actions/suspend/?ids=not-a-uuid").status_code == 302
    assert support.post("/admin/accounts/account/actions/suspend/", {"ids": "not-a-uuid"}).status_code == 302


def test_anonymous_visitors_are_sent_to_the_login_page(client, account):
    response = client.get(action_url(account, "grant-credits"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def ledger_count(account: Account) -> int:
    return LedgerEntry.objects.filter(account=account).count()


def test_a_direct_post_cannot_grant_free_uses_to_a_closed_account(support, account):
    account_set_status(account_id=account.pk, status=AccountStatus.CLOSED, reason="user left", actor="test")
    before = ledger_count(account)

    response = support.post(
        action_url(account, "grant-free-uses"),
        {"free_uses": 4, "reason": "r", "idempotency_key": "admin:closed"},
        follow=True,
    )

    assert "closed" in response.content.decode()
    account.refresh_from_db()
    assert account.free_uses_remaining == 3
    assert ledger_count(account) == before


def test_a_closed_account_gets_no_grant_but_may_be_settled_by_an_adjustment(support, account):
    account_set_status(account_id=account.pk, status=AccountStatus.CLOSED, reason="user left", actor="test")
    before = ledger_count(account)

    grant = support.post(
        action_url(account, "grant-credits"),
        {"amount": 5, "unit": "uses", "kind": "grant", "reason": "r", "idempotency_key": "admin:g"},
        follow=True,
    )
    account.refresh_from_db()
    assert "closed" in grant.content.decode()
    assert (account.balance_minor, ledger_count(account)) == (200, before)

    support.post(
        action_url(account, "grant-credits"),
        {"amount": -2, "unit": "uses", "kind": "adjustment", "reason": "refunded", "idempotency_key": "admin:a"},
    )
    account.refresh_from_db()
    assert account.balance_minor == 0


def test_the_grant_pages_of_a_closed_account_send_staff_back_with_a_message(support, account):
    account_set_status(account_id=account.pk, status=AccountStatus.CLOSED, reason="user left", actor="test")

    response = support.get(action_url(account, "grant-free-uses"))

    assert response.status_code == 302
    assert response["Location"] == f"/admin/accounts/account/{account.pk}/change/"
    assert support.get(action_url(account, "grant-credits")).status_code == 200  # adjustments still allowed


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        (AccountStatus.ACTIVE, "reactivate", "already active"),
        (AccountStatus.CLOSED, "suspend", "cannot become suspended"),
        (AccountStatus.CLOSED, "close", "already closed"),
        (AccountStatus.SUSPENDED, "suspend", "already suspended"),
    ],
)
def test_a_direct_post_of_an_impossible_status_move_writes_nothing(support, account, status, action, message):
    if status != AccountStatus.ACTIVE:
        account_set_status(account_id=account.pk, status=status, reason="setup", actor="test")
    before = ledger_count(account)

    response = support.post(action_url(account, action), {"reason": "again"}, follow=True)

    assert message in response.content.decode()
    account.refresh_from_db()
    assert account.status == status
    assert ledger_count(account) == before


def test_a_bulk_grant_skips_closed_accounts_and_says_so(support):
    open_, closed = (
        funded_account({"oauth_provider": "oauth:google", "external_id": f"{name}@example.com"})
        for name in ("open", "closed")
    )
    account_set_status(account_id=closed.pk, status=AccountStatus.CLOSED, reason="left", actor="test")

    response = support.post(
        "/admin/accounts/account/actions/grant-free-uses/",
        {"ids": f"{open_.pk},{closed.pk}", "free_uses": 2, "reason": "beta", "idempotency_key": "admin:bulk"},
        follow=True,
    )

    open_.refresh_from_db()
    closed.refresh_from_db()
    assert (open_.free_uses_remaining, closed.free_uses_remaining) == (5, 3)
    shown = [str(m) for m in response.context["messages"]]
    assert any(f"{closed} is closed" in m for m in shown), shown

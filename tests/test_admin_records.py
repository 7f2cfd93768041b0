"""Charges, purchases and ledger entries in the admin: searchable, filterable, read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from ledger.models import LedgerEntry
from tests.conftest import charge_body
from tests.factories import SUPPORT_PERMISSIONS, funded_account, paid_purchase, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def support() -> Client:
    client = Client()
    client.force_login(staff_user("support", permissions=SUPPORT_PERMISSIONS))
    return client


@pytest.fixture
def superuser() -> Client:
    client = Client()
    client.force_login(staff_user("root", superuser=True))
    return client


@pytest.fixture
def history(api, user):
    account = funded_account(user, uses=1)
    api.post("/v1/billing/charges", charge_body(user, "needle-key"), format="json")
    purchase = paid_purchase(account, payment_intent_id="pi_needle")
    return account, account.charges.get(), purchase


@pytest.mark.parametrize(
    ("url", "term"),
    [
        ("/admin/charges/charge/", "needle-key"),
        ("/admin/purchases/purchase/", "pi_needle"),
        ("/admin/ledger/ledgerentry/", "pi_needle"),
        ("/admin/ledger/ledgerentry/", "needle-key"),
    ],
)
def test_records_are_searchable_by_account_and_their_keys(support, history, url, term):
    account, _, _ = history
    other = funded_account({"oauth_provider": "oauth:google", "external_id": "other@example.com"}, uses=1)

    by_term = support.get(url, {"q": term})
    by_account = support.get(url, {"q": account.external_id})

    assert by_term.status_code == 200 and by_account.status_code == 200
    assert "0 results" not in by_term.content.decode()
    assert account.external_id in by_account.content.decode()
    assert other.external_id not in by_account.content.decode()


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/admin/charges/charge/", {"paid_with_free_use__exact": "1"}),
        ("/admin/purchases/purchase/", {"status__exact": "succeeded"}),
        ("/admin/ledger/ledgerentry/", {"kind__exact": "charge"}),
    ],
)
def test_records_can_be_filtered(support, history, url, params):
    assert support.get(url, params).status_code == 200


@pytest.mark.parametrize("model", ["charges/charge", "purchases/purchase", "ledger/ledgerentry"])
def test_records_are_read_only_even_for_a_superuser(superuser, history, model):
    _, charge, purchase = history
    obj = {"charges/charge": charge, "purchases/purchase": purchase, "ledger/ledgerentry": LedgerEntry.objects.first()}[
        model
    ]

    page = superuser.get(f"/admin/{model}/{obj.pk}/change/")
    edit = superuser.post(f"/admin/{model}/{obj.pk}/change/", {"amount_minor": 1})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert edit.status_code == 403
    assert superuser.get(f"/admin/{model}/add/").status_code == 403
    assert superuser.post(f"/admin/{model}/{obj.pk}/delete/").status_code == 403


def test_records_link_to_their_account_and_ledger_entries(support, history):
    account, charge, purchase = history

    charge_page = support.get(f"/admin/charges/charge/{charge.pk}/change/").content.decode()
    purchase_page = support.get(f"/admin/purchases/purchase/{purchase.pk}/change/").content.decode()
    entry = LedgerEntry.objects.get(purchase=purchase)
    entry_page = support.get(f"/admin/ledger/ledgerentry/{entry.pk}/change/").content.decode()

    assert f"/admin/accounts/account/{account.pk}/change/" in charge_page
    assert "/admin/ledger/ledgerentry/" in charge_page
    assert f"/admin/ledger/ledgerentry/{entry.pk}/change/" in purchase_page
    assert f"/admin/purchases/purchase/{purchase.pk}/change/" in entry_page


def test_the_purchase_page_does_not_show_the_client_secret(support, history):
    _, _, purchase = history
    purchase.client_secret = "pi_needle_secret_abc"
    purchase.save()

    assert (
        "pi_needle_secret_abc" not in support.get(f"/admin/purchases/purchase/{purchase.pk}/change/").content.decode()
    )


def test_dj_stripes_own_admin_stays_available(superuser):
    index = superuser.get("/admin/").content.decode()

    assert "/admin/djstripe/" in index
    assert superuser.get("/admin/djstripe/paymentintent/").status_code == 200


@pytest.mark.parametrize("url", ["/admin/charges/charge/", "/admin/purchases/purchase/", "/admin/ledger/ledgerentry/"])
def test_the_account_pages_all_links_list_only_that_accounts_records(support, history, url):
    account, _, _ = history
    other = funded_account({"oauth_provider": "oauth:google", "external_id": "other@example.com"}, uses=1)
    paid_purchase(other, payment_intent_id="pi_other")

    response = support.get(url, {"account__id__exact": str(account.pk)})

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    assert {row.account_id for row in response.context["cl"].result_list} == {account.pk}

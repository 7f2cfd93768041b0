"""The back office: store products are edited here, store purchases are read-only records,
shown with their state on the account's page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account
from stores.models import StoreProduct, StorePurchase
from tests.factories import staff_user
from tests.google_play import VERIFY_URL, verify_body

pytestmark = pytest.mark.django_db


def staff(*permissions: str, superuser: bool = False) -> Client:
    client = Client()
    client.force_login(staff_user("staff", permissions=permissions, superuser=superuser))
    return client


def test_the_account_page_lists_its_store_purchases_and_their_state(api, user, play):
    kept, refunded = play.buy(), play.buy()
    for token in (kept, refunded):
        api.post(VERIFY_URL, verify_body(user, token), format="json")
    play.void_notice(api, refunded)
    account = Account.objects.get(external_id=user["external_id"])
    client = staff("accounts.view_account", "ledger.view_ledgerentry", "stores.view_storepurchase")

    page = client.get(reverse("admin:accounts_account_change", args=[account.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "store purchases" in html.lower()
    for token in (kept, refunded):
        assert StorePurchase.objects.get(purchase_token=token).order_id in html
    assert "Voided" in html and "Credited" in html


def test_staff_without_the_view_permission_do_not_see_store_purchases(api, user, play):
    api.post(VERIFY_URL, verify_body(user, play.buy()), format="json")
    account = Account.objects.get(external_id=user["external_id"])

    page = staff("accounts.view_account").get(reverse("admin:accounts_account_change", args=[account.pk]))

    assert page.status_code == 200
    assert StorePurchase.objects.get().order_id not in page.content.decode()


def test_store_products_are_editable_but_their_store_and_id_are_not(play):
    client = staff(superuser=True)
    product = StoreProduct.objects.get(product_id="credits_100")
    url = reverse("admin:stores_storeproduct_change", args=[product.pk])

    response = client.post(
        url, {"store": "app_store", "product_id": "changed", "grants": "credit", "uses": 120, "active": "on"}
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.store, product.product_id, product.uses) == ("google_play", "credits_100", 120)


def test_store_purchases_cannot_be_added_changed_or_deleted_in_the_admin(api, user, play):
    api.post(VERIFY_URL, verify_body(user, play.buy()), format="json")
    purchase = StorePurchase.objects.get()
    client = staff(superuser=True)

    assert client.get(reverse("admin:stores_storepurchase_changelist")).status_code == 200
    assert client.get(reverse("admin:stores_storepurchase_add")).status_code == 403
    change = client.post(reverse("admin:stores_storepurchase_change", args=[purchase.pk]), {"credit_minor": 1})
    assert change.status_code == 403
    purchase.refresh_from_db()
    assert purchase.credit_minor == 9900

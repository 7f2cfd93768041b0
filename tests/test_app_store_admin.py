"""The back office shows App Store purchases beside Google Play's on the account's page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account
from stores.models import Store, StorePurchase
from tests import app_store as fixtures
from tests import google_play
from tests.app_store import VERIFY_URL
from tests.factories import staff_user

apple, app_store = fixtures.apple, fixtures.app_store

pytestmark = pytest.mark.django_db


def test_the_account_page_lists_purchases_from_both_stores(api, user, play, app_store):
    token = play.buy()
    assert api.post(google_play.VERIFY_URL, google_play.verify_body(user, token), format="json").status_code == 200
    transaction_id = app_store.buy()
    assert api.post(VERIFY_URL, {**user, "transaction_id": transaction_id}, format="json").status_code == 200
    account = Account.objects.get(external_id=user["external_id"])
    client = Client()
    client.force_login(
        staff_user(
            "staff", permissions=("accounts.view_account", "ledger.view_ledgerentry", "stores.view_storepurchase")
        )
    )

    html = client.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()

    assert "App Store" in html and "Google Play" in html
    assert transaction_id in html
    assert StorePurchase.objects.get(store=Store.GOOGLE_PLAY).order_id in html


def test_an_app_store_purchase_page_shows_apples_latest_news(api, user, app_store):
    transaction_id = app_store.buy()
    api.post(VERIFY_URL, {**user, "transaction_id": transaction_id}, format="json")
    purchase = StorePurchase.objects.get(store=Store.APP_STORE)
    client = Client()
    client.force_login(staff_user("staff", superuser=True))

    page = client.get(reverse("admin:stores_storepurchase_change", args=[purchase.pk]))

    assert page.status_code == 200
    assert "Store revoked" in page.content.decode() and "News signed at" in page.content.decode()

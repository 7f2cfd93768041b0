"""The store catalogue the data migration seeds: the original's products, edited by staff after."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from stores.models import Grants, Store, StoreProduct
from tests.factories import tool_product

pytestmark = pytest.mark.django_db

seed_migration = importlib.import_module("stores.migrations.0002_seed_catalogue")


def test_the_seed_holds_the_originals_catalogue():
    tool_product("web_search")

    seed_migration.seed(apps, None)

    products = {
        (p.store, p.product_id): (p.grants, p.uses, p.tool_id and p.tool.product_type)
        for p in StoreProduct.objects.all()
    }
    assert products == {
        (Store.GOOGLE_PLAY, "credits_100"): (Grants.CREDIT, 99, None),
        (Store.GOOGLE_PLAY, "credits_250"): (Grants.CREDIT, 249, None),
        (Store.GOOGLE_PLAY, "credits_600"): (Grants.CREDIT, 599, None),
        (Store.APP_STORE, "ai.ciris.mobile.credits_100_v1"): (Grants.CREDIT, 99, None),
        (Store.APP_STORE, "ai.ciris.mobile.credits_250_v1"): (Grants.CREDIT, 249, None),
        (Store.APP_STORE, "ai.ciris.mobile.credits_600_v1"): (Grants.CREDIT, 599, None),
        (Store.GOOGLE_PLAY, "web_search_10"): (Grants.TOOL, 10, "web_search"),
    }


def test_the_seed_keeps_what_staff_changed():
    StoreProduct.objects.create(store=Store.GOOGLE_PLAY, product_id="credits_100", uses=120)

    seed_migration.seed(apps, None)

    assert StoreProduct.objects.get(product_id="credits_100").uses == 120


def test_a_tool_pack_must_name_its_tool_and_a_credit_pack_none():
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        StoreProduct.objects.create(store=Store.GOOGLE_PLAY, product_id="pack", grants=Grants.TOOL, uses=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        StoreProduct.objects.create(
            store=Store.GOOGLE_PLAY, product_id="credits", uses=5, tool=tool_product("web_search")
        )

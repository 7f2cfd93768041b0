"""NUL bytes in any admin search, filter or object id are a clean answer, never a 500.

PostgreSQL refuses NUL in text parameters (psycopg raises before the query is sent), so
`/admin/accounts/account/?tenant=%00` was a 500. One mechanism covers every admin page
(backoffice.middleware.StripNulFromAdminRequests); this walks every registered changelist
with NUL in its search and in each of its filters' parameters.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client

from tests.conftest import charge_body
from tests.factories import funded_account, paid_purchase, staff_user

pytestmark = pytest.mark.django_db

MODELS = sorted(admin.site._registry, key=lambda m: m._meta.label)
NUL_VALUES = ["\x00", "a\x00b"]


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(staff_user("root", superuser=True))
    return client


@pytest.fixture
def data(api, user):
    account = funded_account({**user, "tenant_id": "acme"}, uses=2)
    api.post("/v1/billing/charges", charge_body({**user, "tenant_id": "acme"}, "k1"), format="json")
    paid_purchase(account, payment_intent_id="pi_nul")
    return account


def _changelist(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def test_the_reported_tenant_filter(root, data):
    response = root.get("/admin/accounts/account/?tenant=%00")

    assert response.status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_nul_in_the_search_of_every_changelist(root, data, model):
    for value in NUL_VALUES:
        response = root.get(_changelist(model), {"q": value})
        assert response.status_code == 200, (model, value)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_nul_in_every_filter_parameter_of_every_changelist(root, data, model):
    page = root.get(_changelist(model))
    assert page.status_code == 200
    changelist = page.context["cl"]
    params = {p for spec in changelist.filter_specs for p in spec.expected_parameters()}
    if changelist.date_hierarchy:
        params |= {f"{changelist.date_hierarchy}__{part}" for part in ("year", "month", "day")}
    params |= {"o", "p"}

    for param in sorted(params):
        for value in NUL_VALUES:
            response = root.get(_changelist(model), {param: value})
            assert response.status_code < 500, (model, param, value)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_nul_in_an_object_id(root, model):
    for view in ("change/", "history/", "delete/"):
        response = root.get(f"{_changelist(model)}a%00b/{view}")
        assert response.status_code < 500, (model, view)

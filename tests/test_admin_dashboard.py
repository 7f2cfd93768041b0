"""The staff dashboard: headline numbers and charts drawn from data, with no CDN."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from tests.conftest import charge_body
from tests.factories import SUPPORT_PERMISSIONS, funded_account, paid_purchase, staff_user

pytestmark = pytest.mark.django_db

URL = "/admin/dashboard/"


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(staff_user("support", permissions=SUPPORT_PERMISSIONS))
    return client


def test_the_dashboard_shows_accounts_uses_conversion_and_revenue(staff, api, user):
    account = funded_account(user)
    funded_account({"oauth_provider": "oauth:google", "external_id": "idle@example.com"})
    for i in range(2):
        api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json")
    paid_purchase(account)

    response = staff.get(URL)

    assert response.status_code == 200
    overview = response.context["overview"]
    assert overview.accounts == 2
    assert overview.paying_accounts == 1
    assert overview.conversion_percent == 50.0
    assert overview.active_users == {"today": 1, "7d": 1, "30d": 1}
    assert overview.uses == {"today": 2, "7d": 2, "30d": 2}
    assert overview.revenue_minor_30d == 500
    body = response.content.decode()
    assert body.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 6
    assert "Uses per day" in body and "Revenue per day" in body
    assert "free uses 2" in body  # today's bar tooltip, drawn from the data


def test_the_dashboard_shows_llm_cost_revenue_and_margin_per_model(staff, api, user):
    funded_account(user, uses=1, free_uses=0)
    assert api.post("/v1/billing/charges", charge_body(user, "litellm:i1"), format="json").status_code == 201
    for model, cost in (("m-a", 0.5), ("m-b", 0.25)):
        body = {**user, "interaction_id": "i1", "total_llm_calls": 1, "models_used": [model], "actual_cost_cents": cost}
        assert api.post("/v1/billing/litellm/usage", body, format="json").status_code == 201

    response = staff.get(URL)

    margin = response.context["margin"]
    assert (margin.total.interactions, margin.total.paid_uses) == (1, 1)
    assert margin.total.cost_cents == Decimal("0.75")
    assert margin.total.revenue_minor == Decimal(25)
    assert margin.total.margin_minor == Decimal("24.25")
    assert [(m.key, m.cost_cents) for m in margin.models] == [("m-a", Decimal("0.375")), ("m-b", Decimal("0.375"))]
    body = response.content.decode()
    assert "Revenue per use = pack price ÷ pack uses = 500 ÷ 20 = 25.00" in body
    assert "<td>m-a</td><td>1</td><td>1</td>" in body
    assert "provider cost 0.75, margin 24.25" in body  # today's bar tooltip


def test_the_dashboard_loads_nothing_from_other_hosts(staff):
    body = staff.get(URL).content.decode()

    assert '<script src="http' not in body
    assert "cdn" not in body.lower()


def test_the_dashboard_is_linked_from_the_admin_index(staff):
    assert URL in staff.get("/admin/").content.decode()


def test_the_dashboard_is_for_staff_only(client, db):
    from django.contrib.auth.models import User

    User.objects.create_user("customer", password="pw")
    client.login(username="customer", password="pw")

    response = client.get(URL)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_an_empty_service_draws_empty_charts(staff):
    response = staff.get(URL)

    assert response.status_code == 200
    assert response.context["overview"].conversion_percent == 0.0


@pytest.mark.parametrize(
    "permissions",
    [(), ("accounts.view_account",), ("accounts.view_account", "charges.view_charge", "accounts.grant_credits")],
)
def test_staff_who_may_not_see_purchases_and_charges_do_not_see_revenue(db, permissions):
    paid_purchase(funded_account({"oauth_provider": "oauth:google", "external_id": "a@example.com"}))
    client = Client()
    client.force_login(staff_user("newcomer", permissions=permissions))

    response = client.get(URL)

    assert response.status_code == 403
    assert "revenue" not in response.content.decode().lower()
    assert URL not in client.get("/admin/").content.decode()


def test_a_superuser_sees_the_dashboard(db):
    client = Client()
    client.force_login(staff_user("root", superuser=True))

    assert client.get(URL).status_code == 200

"""POST /v1/billing/purchases and GET /v1/billing/purchases/{payment_id}[/status] (on localstripe)."""

from __future__ import annotations

import pytest

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from purchases.models import Purchase, PurchaseStatus
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

URL = "/v1/billing/purchases"


def buy(api, user, **extra):
    return api.post(URL, {**user, **extra}, format="json")


def test_a_purchase_answers_with_the_guides_fields(api, user, localstripe):
    response = buy(api, user, customer_email="buyer@example.com", return_url="https://app.example.com/done")

    assert response.status_code == 201, response.content
    data = response.json()
    assert data["payment_id"].startswith("pi_")
    assert data["client_secret"].startswith(data["payment_id"] + "_secret_")
    assert data["amount_minor"] == 500
    assert data["currency"] == "USD"
    assert data["uses_purchased"] == 20
    assert data["publishable_key"] == "pk_test_cirisbillingtests0000000000"
    assert data["status"] == "requires_payment_method"
    purchase = Purchase.objects.get(stripe_payment_intent_id=data["payment_id"])
    assert (purchase.amount_minor, purchase.currency, purchase.uses, purchase.credit_minor) == (500, "USD", 20, 2000)
    assert str(purchase.pk) == data["purchase_id"]
    assert purchase.actor.startswith("api_key:")


def test_the_payment_intent_carries_amount_currency_metadata_and_the_buyers_email(api, user, localstripe):
    data = buy(api, user, customer_email="buyer@example.com").json()

    intent = localstripe.get(f"/v1/payment_intents/{data['payment_id']}")
    purchase = Purchase.objects.get(pk=data["purchase_id"])
    assert intent["amount"] == 500
    assert intent["currency"] == "usd"
    assert intent["metadata"] == {
        "purchase_id": str(purchase.pk),
        "account_id": str(purchase.account_id),
        "uses": "20",
    }
    customer = localstripe.get(f"/v1/customers/{intent['customer']}")
    assert customer["email"] == "buyer@example.com"
    assert purchase.stripe_customer_id == intent["customer"]


def test_an_account_keeps_one_stripe_customer(api, user, localstripe):
    first = buy(api, user, customer_email="buyer@example.com").json()
    second = buy(api, user, customer_email="new@example.com").json()

    customers = Purchase.objects.filter(pk__in=[first["purchase_id"], second["purchase_id"]]).values_list(
        "stripe_customer_id", flat=True
    )
    assert len(set(customers)) == 1
    assert localstripe.get(f"/v1/customers/{customers[0]}")["email"] == "new@example.com"


def test_without_an_email_no_customer_is_made(api, user, localstripe):
    data = buy(api, user).json()

    assert localstripe.get(f"/v1/payment_intents/{data['payment_id']}")["customer"] is None


def test_a_purchase_creates_the_account_on_first_sight(api, user, localstripe):
    buy(api, user)

    account = Account.objects.get(external_id=user["external_id"])
    assert account.free_uses_remaining == 3
    assert account.balance_minor == 0, "a purchase credits only when Stripe says it was paid"


def test_several_packs_cost_and_buy_in_proportion(api, user, localstripe):
    data = buy(api, user, quantity=3).json()

    assert (data["amount_minor"], data["uses_purchased"]) == (1500, 60)
    assert Purchase.objects.get(pk=data["purchase_id"]).credit_minor == 6000


def test_the_pack_follows_the_settings(api, user, localstripe, settings):
    settings.BILLING_PACK_PRICE_MINOR = 1000
    settings.BILLING_PACK_USES = 50
    settings.BILLING_USE_PRICE_MINOR = 1

    data = buy(api, user).json()

    assert (data["amount_minor"], data["uses_purchased"]) == (1000, 50)
    assert Purchase.objects.get(pk=data["purchase_id"]).credit_minor == 50


def test_a_retry_with_the_same_idempotency_key_returns_the_same_purchase(api, user, localstripe):
    first = buy(api, user, idempotency_key="buy-1")
    retry = buy(api, user, idempotency_key="buy-1")

    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.json()["payment_id"] == first.json()["payment_id"]
    assert retry.json()["client_secret"] == first.json()["client_secret"]
    assert Purchase.objects.filter(account__external_id=user["external_id"]).count() == 1


def test_the_same_key_for_another_quantity_is_422(api, user, localstripe):
    buy(api, user, idempotency_key="buy-1")

    response = buy(api, user, idempotency_key="buy-1", quantity=2)

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


def test_without_a_key_each_request_is_a_new_purchase(api, user, localstripe):
    first = buy(api, user).json()
    second = buy(api, user).json()

    assert first["payment_id"] != second["payment_id"]


@pytest.mark.parametrize("missing", ["STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"])
def test_without_stripe_configured_it_is_503_and_nothing_is_written(api, user, settings, missing):
    setattr(settings, missing, "")

    response = buy(api, user, customer_email="buyer@example.com")

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert "Stripe is not configured" in response.json()["detail"]
    assert response["Retry-After"]
    assert not Account.objects.exists()
    assert not Purchase.objects.exists()


def test_when_stripe_is_unreachable_it_is_503_and_the_purchase_stays_created(api, user, settings, monkeypatch):
    monkeypatch.setattr("purchases.stripe_api.STRIPE_NETWORK_RETRIES", 0)
    settings.STRIPE_API_HOST = "http://127.0.0.1:9"  # nothing listens there

    response = buy(api, user, idempotency_key="buy-1")

    assert response.status_code == 503
    assert response.json()["detail"] == "The payment provider is unavailable, retry shortly."
    purchase = Purchase.objects.get()
    assert purchase.status == PurchaseStatus.CREATED
    assert purchase.stripe_payment_intent_id is None


def test_a_retry_after_stripe_was_unreachable_completes_the_same_purchase(
    api, user, settings, localstripe, monkeypatch
):
    monkeypatch.setattr("purchases.stripe_api.STRIPE_NETWORK_RETRIES", 0)
    settings.STRIPE_API_HOST = "http://127.0.0.1:9"
    assert buy(api, user, idempotency_key="buy-1").status_code == 503
    settings.STRIPE_API_HOST = localstripe.url

    response = buy(api, user, idempotency_key="buy-1")

    assert response.status_code == 200
    assert response.json()["payment_id"].startswith("pi_")
    assert Purchase.objects.get().stripe_payment_intent_id == response.json()["payment_id"]


def test_a_retry_with_another_email_after_a_timeout_reuses_the_customer(api, user, localstripe, monkeypatch):
    from billing_site.errors import ServiceUnavailable
    from purchases import stripe_api

    create_intent = stripe_api.payment_intent_create

    def timed_out(**kwargs):
        raise ServiceUnavailable("The payment provider is unavailable, retry shortly.", retry_after=30)

    monkeypatch.setattr(stripe_api, "payment_intent_create", timed_out)
    assert buy(api, user, idempotency_key="buy-1", customer_email="first@example.com").status_code == 503
    customer_id = Purchase.objects.get().stripe_customer_id
    assert customer_id, "saved before the intent is created"

    def refused(**kwargs):
        # Stripe: the customer's idempotency key was already used with other parameters.
        raise ServiceUnavailable("The payment provider refused the request; the operator has been alerted.")

    monkeypatch.setattr(stripe_api, "payment_intent_create", create_intent)
    monkeypatch.setattr(stripe_api, "customer_create", refused)
    response = buy(api, user, idempotency_key="buy-1", customer_email="second@example.com")

    assert response.status_code == 200, response.content
    intent = localstripe.get(f"/v1/payment_intents/{response.json()['payment_id']}")
    assert intent["customer"] == customer_id
    assert localstripe.get(f"/v1/customers/{customer_id}")["email"] == "second@example.com"


def test_a_purchase_whose_credit_would_not_fit_the_balance_is_422_and_writes_nothing(api, user, localstripe):
    from ledger.services import MAX_BALANCE_MINOR

    account = funded_account(user)
    Account.objects.filter(pk=account.pk).update(balance_minor=MAX_BALANCE_MINOR - 1999)

    response = buy(api, user)

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "invalid"
    assert not Purchase.objects.exists()


def test_purchases_waiting_for_payment_count_towards_the_limit(api, user, localstripe):
    from ledger.services import MAX_BALANCE_MINOR

    account = funded_account(user)
    Account.objects.filter(pk=account.pk).update(balance_minor=MAX_BALANCE_MINOR - 3000)
    assert buy(api, user, idempotency_key="first").status_code == 201

    assert buy(api, user).status_code == 422
    assert buy(api, user, idempotency_key="first").status_code == 200, "a retry still gets its purchase"
    assert Purchase.objects.count() == 1


@pytest.mark.parametrize("status", [AccountStatus.SUSPENDED, AccountStatus.CLOSED])
def test_a_suspended_or_closed_account_cannot_buy(api, user, localstripe, status):
    account = funded_account(user)
    account_set_status(account_id=account.pk, status=status, reason="support", actor="test")

    response = buy(api, user)

    assert response.status_code == 403
    assert not Purchase.objects.exists()


def test_a_read_only_key_cannot_buy(make_client, user, localstripe):
    response = buy(make_client(permissions="read"), user)

    assert response.status_code == 403
    assert not Purchase.objects.exists()


def test_no_key_is_401(client, user):
    assert client.post(URL, user, content_type="application/json").status_code == 401


def test_a_tenant_bound_key_may_not_buy_for_another_tenant(make_client, user, localstripe):
    response = buy(make_client(tenant_id="acme"), user, tenant_id="globex")

    assert response.status_code == 403
    assert response.json()["code"] == "tenant_forbidden"


INVALID = [
    ("quantity zero", {"quantity": 0}),
    ("quantity too many", {"quantity": 51}),
    ("quantity a string", {"quantity": "lots"}),
    ("quantity a float", {"quantity": 1.5}),
    ("quantity a numeric string", {"quantity": "2"}),
    ("quantity a whole float", {"quantity": 2.0}),
    ("quantity a boolean", {"quantity": True}),
    ("external id missing", {"external_id": None}),
    ("provider blank", {"oauth_provider": ""}),
    ("key oversized", {"idempotency_key": "k" * 256}),
    ("key with NUL", {"idempotency_key": "a\u0000b"}),
]


@pytest.mark.parametrize("name,change", INVALID, ids=[name for name, _ in INVALID])
def test_invalid_input_is_422_and_writes_nothing(api, user, name, change):
    body = {**user}
    for field, value in change.items():
        if value is None:
            body.pop(field, None)
        else:
            body[field] = value

    response = api.post(URL, body, format="json")

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error"
    assert not Purchase.objects.exists()


def test_a_bad_email_is_ignored_not_refused(api, user, localstripe):
    response = buy(api, user, customer_email="not an email")

    assert response.status_code == 201
    assert Purchase.objects.get().customer_email == ""


def test_malformed_json_is_400(api):
    response = api.post(URL, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


# --- GET /v1/billing/purchases/{payment_id} and /status -------------------------------


@pytest.mark.parametrize("suffix", ["", "/status"])
def test_status_before_payment_shows_nothing_added(api, user, localstripe, suffix):
    payment_id = buy(api, user).json()["payment_id"]

    response = api.get(f"{URL}/{payment_id}{suffix}")

    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "requires_payment_method"
    assert data["succeeded"] is False
    assert data["credits_added"] == 0
    assert data["balance_after"] is None
    assert data["payment_id"] == payment_id


def test_a_read_key_may_see_a_purchase(make_client, api, user, localstripe):
    payment_id = buy(api, user).json()["payment_id"]

    assert make_client(permissions="read").get(f"{URL}/{payment_id}/status").status_code == 200


def test_another_tenants_key_gets_404(make_client, user, localstripe):
    payment_id = buy(make_client(tenant_id="acme"), user).json()["payment_id"]

    response = make_client(tenant_id="globex").get(f"{URL}/{payment_id}/status")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert make_client(tenant_id="acme").get(f"{URL}/{payment_id}/status").status_code == 200


@pytest.mark.parametrize("payment_id", ["pi_doesnotexist", "pi%00nul", "x" * 300, "pi-with-dash"])
def test_an_unknown_payment_is_404(api, payment_id):
    response = api.get(f"{URL}/{payment_id}/status")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"

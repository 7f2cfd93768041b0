"""GET /metrics: Prometheus text, internal callers or a token, domain counters after commit."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings
from prometheus_client import REGISTRY

from accounts.identity import Identity
from accounts.models import AccountStatus
from accounts.services import account_set_status, credits_grant
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

URL = "/metrics"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_loopback_callers_get_prometheus_text():
    response = Client(REMOTE_ADDR="127.0.0.1").get(URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in (
        "billing_credit_checks_total",
        "billing_charges_total",
        "billing_credits_granted_minor_total",
        "billing_purchases_total",
        "billing_http_request_duration_seconds",
    ):
        assert name in text


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.9", "172.20.0.5", "::1"])
def test_private_addresses_are_internal(address):
    assert Client(REMOTE_ADDR=address).get(URL).status_code == 200


def test_public_addresses_are_refused_without_a_token():
    response = Client(REMOTE_ADDR="8.8.8.8").get(URL)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


@override_settings(METRICS_TOKEN="s3cret-metrics-token")
def test_a_configured_token_is_required_even_from_loopback():
    client = Client(REMOTE_ADDR="127.0.0.1")

    assert client.get(URL).status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = Client(REMOTE_ADDR="8.8.8.8").get(URL, HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert response.status_code == 200


def test_credit_checks_are_counted_by_result(api, user):
    before_free, before_insufficient = (
        sample("billing_credit_checks_total", result="free"),
        sample("billing_credit_checks_total", result="insufficient"),
    )
    api.post("/v1/billing/credits/check", user, format="json")
    funded_account(user, free_uses=0)
    api.post("/v1/billing/credits/check", user, format="json")

    assert sample("billing_credit_checks_total", result="free") == before_free + 1
    assert sample("billing_credit_checks_total", result="insufficient") == before_insufficient + 1


def test_charges_are_counted_by_result(api, user):
    results = ("free", "ok", "duplicate", "insufficient", "suspended")
    before = {r: sample("billing_charges_total", result=r) for r in results}
    funded_account(user, uses=1, free_uses=1)

    api.post("/v1/billing/charges", charge_body(user, "k1"), format="json")  # free use
    api.post("/v1/billing/charges", charge_body(user, "k2"), format="json")  # paid
    api.post("/v1/billing/charges", charge_body(user, "k2"), format="json")  # replay
    api.post("/v1/billing/charges", charge_body(user, "k3"), format="json")  # nothing left
    account = funded_account(user)
    account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, reason="t", actor="t")
    api.post("/v1/billing/charges", charge_body(user, "k4"), format="json")

    assert {r: sample("billing_charges_total", result=r) - before[r] for r in results} == dict.fromkeys(results, 1)


def test_credit_is_counted_only_once_committed(django_capture_on_commit_callbacks, user):
    identity = Identity(oauth_provider=user["oauth_provider"], external_id=user["external_id"])
    funded_account(user)
    before = sample("billing_credits_granted_minor_total", kind="grant")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        credits_grant(identity=identity, actor="t", reason="t", amount_minor=700)
    assert sample("billing_credits_granted_minor_total", kind="grant") == before  # not yet committed
    for callback in callbacks:
        callback()

    assert sample("billing_credits_granted_minor_total", kind="grant") == before + 700


def test_latency_is_labelled_by_route_name_not_path(api, user):
    response = api.post("/v1/billing/accounts", user, format="json")
    api.get(f"/v1/billing/accounts/{response.json()['account_id']}")

    text = Client(REMOTE_ADDR="127.0.0.1").get(URL).content.decode()
    assert 'billing_http_request_duration_seconds_count{method="GET",route="accounts-detail"}' in text
    assert 'route="credits-check"' in text or 'route="accounts-create"' in text
    assert not re.search(r'route="[^"]*[0-9a-f]{8}-[0-9a-f]{4}', text)

"""X-Request-ID: taken from the caller or made, returned, and on every log line of the request."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from billing_site.request_context import RequestIdLogFilter
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_log():
    """The production handler's formatter and filter, on a buffer, at INFO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(import_string(settings.LOGGING["formatters"]["json"]["()"])())  # the production one
    handler.addFilter(RequestIdLogFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_a_request_id_is_made_when_none_is_sent(api, user):
    response = api.post("/v1/billing/credits/check", user, format="json")

    assert len(response["X-Request-ID"]) == 32


def test_the_callers_request_id_is_returned(api, user):
    response = api.post("/v1/billing/credits/check", user, format="json", HTTP_X_REQUEST_ID="agent-42.req:7")

    assert response["X-Request-ID"] == "agent-42.req:7"


@pytest.mark.parametrize("bad", ["x" * 200, "has space", "new\nline", '"quoted"', "trailing-newline\n"])
def test_an_unusable_request_id_is_replaced(api, user, bad):
    response = api.post("/v1/billing/credits/check", user, format="json", HTTP_X_REQUEST_ID=bad)

    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_errors_and_health_carry_it_too(client):
    assert client.get("/no/such/page")["X-Request-ID"]
    assert client.get("/health", HTTP_X_REQUEST_ID="h-1")["X-Request-ID"] == "h-1"


def test_money_events_are_json_lines_with_the_request_id_and_no_secrets(api, user, json_log):
    key = api._credentials["HTTP_X_API_KEY"]
    api.post("/v1/billing/charges", charge_body(user, "k1"), format="json", HTTP_X_REQUEST_ID="req-1")
    for i in range(2, 5):
        api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json", HTTP_X_REQUEST_ID=f"req-{i}")
    api.post("/v1/billing/charges", charge_body(user, "k1"), format="json", HTTP_X_REQUEST_ID="req-replay")

    lines = json_log()
    events = {line["request_id"]: line for line in lines if line.get("event") == "charge"}
    created = events["req-1"]
    assert created["message"] == "charge created"
    assert created["outcome"] == "free"
    assert created["amount_minor"] == 100
    assert created["account_id"]
    assert created["level"] == "INFO"
    refused = events["req-4"]
    assert (refused["outcome"], refused["amount_minor"]) == ("insufficient", 100)
    assert refused["account_id"] == created["account_id"]
    assert events["req-replay"]["outcome"] == "duplicate"
    text = "\n".join(json.dumps(line) for line in lines)
    assert key not in text  # the prefix may appear (it names the key); the secret never


def test_each_charge_request_logs_its_money_event_exactly_once(api, user, json_log):
    funded_account(user, uses=1, free_uses=0)
    for request_id, key, amount in [
        ("paid", "once-1", 100),
        ("replay", "once-1", 100),
        ("mismatch", "once-1", 7),
        ("insufficient", "once-2", 100),
    ]:
        api.post("/v1/billing/charges", charge_body(user, key, amount), format="json", HTTP_X_REQUEST_ID=request_id)

    events = [
        (line["request_id"], line["message"], line["outcome"]) for line in json_log() if line.get("event") == "charge"
    ]
    assert events == [
        ("paid", "charge created", "ok"),
        ("replay", "charge replayed", "duplicate"),
        ("mismatch", "charge refused", "mismatch"),
        ("insufficient", "charge refused", "insufficient"),
    ]


def test_log_lines_outside_requests_have_a_null_request_id(json_log):
    logging.getLogger("billing.test").warning("outside")

    assert json_log()[-1]["request_id"] is None

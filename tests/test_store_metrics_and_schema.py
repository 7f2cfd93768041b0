"""Store verifications are counted by store and result; the store routes are in the schema."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.google_play import VERIFY_URL, verify_body
from tests.test_metrics import sample

pytestmark = pytest.mark.django_db

METRIC = "billing_store_verifications_total"


def test_verifications_are_counted_by_store_and_result(api, user, play):
    results = ("credited", "already_processed", "pending", "not_found", "invalid", "other_account")
    before = {r: sample(METRIC, store="google_play", result=r) for r in results}
    token = play.buy()
    api.post(VERIFY_URL, verify_body(user, token), format="json")
    api.post(VERIFY_URL, verify_body(user, token), format="json")
    api.post(VERIFY_URL, verify_body({"oauth_provider": "oauth:google", "external_id": "x"}, token), format="json")
    api.post(VERIFY_URL, verify_body(user, play.buy(state=2)), format="json")
    api.post(VERIFY_URL, verify_body(user, "unknown-token"), format="json")
    api.post(VERIFY_URL, verify_body(user, token, "credits_9999"), format="json")

    after = {r: sample(METRIC, store="google_play", result=r) for r in results}
    assert {r: after[r] - before[r] for r in results} == dict.fromkeys(results, 1)


def test_the_store_routes_are_documented_with_examples():
    paths = Client().get("/openapi.json").json()["paths"]

    verify = paths["/v1/billing/google-play/verify"]["post"]
    assert {"200", "400", "409", "422", "503"} <= verify["responses"].keys()
    assert "examples" in verify["requestBody"]["content"]["application/json"]
    assert "examples" in verify["responses"]["200"]["content"]["application/json"]
    tools = paths["/v1/tools/purchase/verify"]["post"]
    assert {"200", "403", "409"} <= tools["responses"].keys()
    assert "/v1/billing/webhooks/google-play" in paths

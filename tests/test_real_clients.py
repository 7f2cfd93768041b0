"""The real CIRIS clients, as they call us: their exact request bodies (docs/ciris-clients.md)
and their answers read the way each client reads them.

The CIRIS agent (CIRISAgent ciris_billing_provider.py, routes/billing.py) and the CIRIS LLM proxy
(CIRISProxy hooks/billing_callback.py) both charge amount_minor 1 per interaction, so their
operators set BILLING_USE_PRICE_MINOR=1 (the `operator_units` fixture).

To add a call: add its body to the client's "sends" section, how the client reads the answer to its "reads"
section, and a test under the client's heading.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import AccountStatus
from accounts.services import account_set_status
from tests.factories import funded_account, tool_product
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def operator_units(settings):
    settings.BILLING_USE_PRICE_MINOR = 1


# --- The agent sends --------------------------------------------------------------------


def agent_check(user: dict) -> dict:
    """_build_check_payload: no amount_minor since late 2025; context only channel/request ids."""
    return {
        **user,
        "wa_id": "wa-2025-01-08-abc123",
        "tenant_id": None,
        "customer_email": "user@example.com",
        "marketing_opt_in": False,
        "marketing_opt_in_source": "app",
        "agent_id": "datum",
        "user_role": "observer",
        "context": {"channel_id": "api_127.0.0.1_8080", "request_id": "req-1"},
    }


def agent_charge(user: dict, key: str | None = None) -> dict:
    """_build_spend_payload: amount_minor 1, its own charge_{sha256[:16]} key when none is given."""
    key = key or "charge_" + hashlib.sha256(f"google:{user['external_id']}:1736339696:1".encode()).hexdigest()[:16]
    return {
        **user,
        "amount_minor": 1,
        "currency": "USD",
        "idempotency_key": key,
        "wa_id": "wa-2025-01-08-abc123",
        "description": "Agent interaction",
        "customer_email": "user@example.com",
        "marketing_opt_in": False,
        "agent_id": "datum",
        "user_role": "observer",
        "metadata": {"message_id": "msg-1", "channel_id": "api_127.0.0.1_8080"},
    }


def agent_transactions_query(user: dict, **page: int) -> dict:
    """routes/billing.py get_transactions: identity, wa_id, limit and offset (default 50, 0)."""
    return {**user, "wa_id": "wa-2025-01-08-abc123", "limit": 50, "offset": 0, **page}


# --- The agent reads ----------------------------------------------------------------------

USE_COUNTS = ("credits_remaining", "free_uses_remaining", "daily_free_uses_remaining", "total_uses")


def agent_reads_check(body: dict[str, Any]) -> bool:
    """_handle_check_success + CreditCheckResult: counts int or null, purchase_required bool, ...;
    has_credit is the agent's own decision from the counts (it ignores ours)."""
    for name in USE_COUNTS:
        assert body.get(name) is None or (type(body[name]) is int), (name, body.get(name))
    assert body.get("purchase_required") is None or type(body["purchase_required"]) is bool
    for name in ("plan_name", "reason"):
        assert body.get(name) is None or isinstance(body[name], str), name
    if body.get("expires_at") is not None:
        dt.datetime.fromisoformat(body["expires_at"])
    if body.get("purchase_options") is not None:
        assert all(type(v) is int for v in body["purchase_options"].values())
    if "provider_metadata" in body:
        assert all(isinstance(v, str) for v in body["provider_metadata"].values())
    return any((body.get(name) or 0) > 0 for name in USE_COUNTS[:3])


def agent_reads_spend(response: Any) -> tuple[bool, str | None]:
    """spend_credit: 200/201 success (charge_id, balance_after an int), 409 success (header),
    402/403 no credit."""
    if response.status_code in (200, 201):
        body = response.json()
        assert isinstance(body["charge_id"], str)
        assert body["balance_after"] is None or type(body["balance_after"]) is int
        return True, body["charge_id"]
    if response.status_code == 409:
        return True, response.headers["X-Existing-Charge-ID"]
    assert response.status_code in (402, 403), response.status_code
    return False, None


TRANSACTION_ITEM = {  # TransactionItem: field -> (types, required)
    "transaction_id": ((str,), True),
    "type": ((str,), True),
    "amount_minor": ((int,), True),
    "currency": ((str,), True),
    "description": ((str,), True),
    "created_at": ((str,), True),
    "balance_after": ((int,), True),
    "metadata": ((dict, type(None)), False),
    "transaction_type": ((str, type(None)), False),
    "external_transaction_id": ((str, type(None)), False),
}


def agent_reads_transactions(body: dict[str, Any]) -> list[dict[str, Any]]:
    """TransactionListResponse(transactions=[TransactionItem(**t)], total_count int, has_more bool)."""
    assert type(body["total_count"]) is int and type(body["has_more"]) is bool
    for item in body["transactions"]:
        for name, (types, required) in TRANSACTION_ITEM.items():
            assert (name in item) or not required, name
            assert type(item.get(name)) in types, (name, item.get(name))
    return body["transactions"]


# --- The proxy sends ----------------------------------------------------------------------


def proxy_check(user: dict) -> dict:
    """_check_billing_auth: the identity only."""
    return {**user}


def proxy_charge(user: dict, iid: str) -> dict:
    """_charge_interaction, after every LLM call of the interaction."""
    return {
        **user,
        "amount_minor": 1,
        "currency": "USD",
        "description": f"LiteLLM interaction: {iid}",
        "idempotency_key": f"litellm:{iid}",
    }


def proxy_usage_per_call(user: dict, iid: str, cost_cents: float = 0.0421) -> dict:
    """_stream_usage_to_billing, after every LLM call (fire-and-forget)."""
    return {
        **user,
        "interaction_id": iid,
        "total_llm_calls": 1,
        "total_prompt_tokens": 1200,
        "total_completion_tokens": 340,
        "models_used": ["groq/llama-3.3-70b"],
        "actual_cost_cents": round(cost_cents, 4),
        "duration_ms": 850,
        "error_count": 0,
        "fallback_count": 0,
    }


def proxy_usage_aggregated(user: dict, iid: str, calls: int, cost_cents: float) -> dict:
    """_log_interaction_usage, when an interaction goes stale or continues: the totals, int cents."""
    return {
        "oauth_provider": "oauth:google",
        "external_id": user["external_id"],
        "interaction_id": iid,
        "total_llm_calls": calls,
        "total_prompt_tokens": 1200 * calls,
        "total_completion_tokens": 340 * calls,
        "models_used": ["groq/llama-3.3-70b"],
        "actual_cost_cents": int(cost_cents),
        "duration_ms": 61_000,
        "error_count": 0,
        "fallback_count": 0,
    }


def proxy_search_charge(user: dict, key: str) -> dict:
    """search_handler._charge_credits, before each web search."""
    return {**user, "product_type": "web_search", "idempotency_key": key}


# --- The proxy reads ----------------------------------------------------------------------


def proxy_allows(response: Any) -> bool:
    """Any status but 200 refuses the call; 200 with has_credit false refuses it as out of credit."""
    return response.status_code == 200 and response.json()["has_credit"] is True


def proxy_charged(response: Any) -> bool:
    """201 must be JSON with balance_after; 200 and 409 mean already charged."""
    if response.status_code == 201:
        assert "balance_after" in response.json()
        return True
    return response.status_code in (200, 409)


def proxy_search_allowed(response: Any) -> tuple[bool, str | None]:
    """Only 200 lets the search through; 402 with `detail` is "no search credits"."""
    if response.status_code == 200:
        return True, None
    if response.status_code == 402:
        return False, response.json()["detail"]
    return False, f"Billing error: {response.status_code}"


def post(api, path: str, body: dict):
    return api.post(f"/v1/billing/{path}", body, format="json")


# --- The agent ------------------------------------------------------------------------------


def test_the_agent_lets_a_new_user_in_on_the_free_uses(api, user):
    response = post(api, "credits/check", agent_check(user))

    assert response.status_code == 200
    assert agent_reads_check(response.json()) is True


def test_the_agent_charges_one_use_and_a_retry_is_already_charged(api, user):
    first = agent_reads_spend(post(api, "charges", agent_charge(user)))
    again = agent_reads_spend(post(api, "charges", agent_charge(user)))

    assert first[0] is True and again == first


def test_the_agent_reads_a_paid_balance_in_whole_uses(api, user):
    funded_account(user, uses=20, free_uses=0)

    body = post(api, "credits/check", agent_check(user)).json()

    assert agent_reads_check(body) is True
    assert body["credits_remaining"] == 20
    response = post(api, "charges", agent_charge(user, key="k1"))
    assert agent_reads_spend(response)[0] is True
    assert response.json()["balance_after"] == 19


def test_the_agent_sees_no_credit_when_everything_is_spent(api, user):
    funded_account(user, free_uses=0)

    assert agent_reads_check(post(api, "credits/check", agent_check(user)).json()) is False
    assert agent_reads_spend(post(api, "charges", agent_charge(user))) == (False, None)


@pytest.mark.parametrize("status", [AccountStatus.SUSPENDED, AccountStatus.CLOSED])
def test_the_agent_does_not_let_an_inactive_account_in_though_it_holds_credit(api, user, status):
    account = funded_account(user, uses=20)  # paid credit and the 3 free uses
    account_set_status(account_id=account.pk, status=status, reason="chargeback", actor="test")

    body = post(api, "credits/check", agent_check(user)).json()

    assert agent_reads_check(body) is False  # the agent decides from the counts, not has_credit
    assert body["has_credit"] is False and body["reason"]
    assert body["balance_minor"] == 20  # the stored balance stays visible
    assert agent_reads_spend(post(api, "charges", agent_charge(user))) == (False, None)


def test_the_agent_lets_a_user_in_on_the_daily_free_uses_then_the_free_ones(api, user, settings):
    settings.BILLING_DAILY_FREE_USES = 2
    funded_account(user, free_uses=1)

    allowed = []
    for n in range(4):
        body = post(api, "credits/check", agent_check(user)).json()
        allowed.append(agent_reads_check(body))
        assert body["daily_free_uses_limit"] == 2
        post(api, "charges", agent_charge(user, key=f"msg-{n}"))

    assert allowed == [True, True, True, False]  # 2 daily, then 1 free, then nothing


def test_the_agent_reads_the_users_history(api, user):
    funded_account(user, uses=2, free_uses=0)
    post(api, "charges", agent_charge(user, key="k1"))

    items = agent_reads_transactions(api.get("/v1/billing/transactions", agent_transactions_query(user)).json())

    assert [(t["type"], t["amount_minor"], t["balance_after"]) for t in items[:2]] == [
        ("charge", -1, 1),
        ("credit", 2, 2),
    ]


def test_the_agent_reads_an_unknown_users_history_as_empty(api, user):
    body = api.get("/v1/billing/transactions", agent_transactions_query(user)).json()

    assert agent_reads_transactions(body) == []


# --- The proxy ------------------------------------------------------------------------------


def test_the_proxy_lets_a_new_user_call_and_charges_the_interaction_once(api, user):
    assert proxy_allows(post(api, "credits/check", proxy_check(user)))

    answers = [post(api, "charges", proxy_charge(user, "int-1")) for _ in range(3)]

    assert [a.status_code for a in answers] == [201, 409, 409]
    assert all(proxy_charged(a) for a in answers)


def test_the_proxys_twelve_charges_for_one_interaction_debit_once(api, user):
    funded_account(user, uses=5, free_uses=0)

    answers = [post(api, "charges", proxy_charge(user, "int-12")) for _ in range(12)]

    assert all(proxy_charged(a) for a in answers)
    assert [a.status_code for a in answers].count(201) == 1
    assert post(api, "credits/check", proxy_check(user)).json()["credits_remaining"] == 4


def test_the_proxys_web_searches_get_ten_free_then_no_search_credits(api, user):
    tool_product()
    answers = [proxy_search_allowed(post_tool(api, proxy_search_charge(user, f"search-{n}"))) for n in range(11)]

    assert [ok for ok, _ in answers] == [True] * 10 + [False]
    assert "web_search" in answers[-1][1]
    # A retry of an answered search (same key) is a 200 with the original result: not charged again.
    assert proxy_search_allowed(post_tool(api, proxy_search_charge(user, "search-0"))) == (True, None)


def post_tool(api, body: dict):
    return api.post("/v1/tools/charge", body, format="json")


def test_the_proxy_is_refused_with_a_200_when_out_of_credit(api, user):
    funded_account(user, free_uses=0)

    response = post(api, "credits/check", proxy_check(user))

    assert response.status_code == 200  # never 402: the proxy treats any other status as an outage
    assert proxy_allows(response) is False


def test_the_proxys_usage_posts_are_logged_and_never_count_a_call_twice(api, user):
    for _ in range(3):
        response = post(api, "litellm/usage", proxy_usage_per_call(user, "int-1"))
        assert response.status_code == 201
        assert response.json()["logged"] is True
    assert post(api, "litellm/usage", proxy_usage_aggregated(user, "int-1", 3, 0.1263)).status_code == 201

    record = UsageRecord.objects.get()
    assert (record.total_llm_calls, record.actual_cost_cents) == (3, Decimal("0.1263"))

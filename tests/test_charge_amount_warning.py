"""A charge amount other than BILLING_USE_PRICE_MINOR is logged once per amount and counted."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from billing_site import metrics
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

URL = "/v1/billing/charges"


@pytest.fixture(autouse=True)
def _fresh_process_memory():
    metrics._warned_amounts.clear()
    yield
    metrics._warned_amounts.clear()


def unexpected(direction: str) -> float:
    return REGISTRY.get_sample_value("billing_charge_amount_unexpected_total", {"direction": direction}) or 0.0


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "BILLING_USE_PRICE_MINOR" in r.message]


def test_the_ciris_clients_amount_of_one_against_the_default_price_warns_once_and_counts_each(api, user, caplog):
    funded_account(user, uses=5)
    below = unexpected("below")

    with caplog.at_level(logging.WARNING, logger="billing.events"):
        for i in range(3):
            assert api.post(URL, charge_body(user, f"k{i}", amount=1), format="json").status_code == 201

    assert unexpected("below") == below + 3
    [record] = warnings(caplog)
    assert (record.amount_minor, record.use_price_minor) == (1, 100)


def test_each_new_amount_warns_once_and_a_larger_one_counts_as_above(api, user, caplog):
    funded_account(user, uses=50)
    above = unexpected("above")

    with caplog.at_level(logging.WARNING, logger="billing.events"):
        for i, amount in enumerate([250, 250, 7, 250]):
            api.post(URL, charge_body(user, f"k{i}", amount=amount), format="json")

    assert [r.amount_minor for r in warnings(caplog)] == [250, 7]
    assert unexpected("above") == above + 3


def test_the_configured_price_neither_warns_nor_counts(api, user, caplog, settings):
    settings.BILLING_USE_PRICE_MINOR = 1
    funded_account(user, uses=5)
    below, above = unexpected("below"), unexpected("above")

    with caplog.at_level(logging.WARNING, logger="billing.events"):
        assert api.post(URL, charge_body(user, "k1", amount=1), format="json").status_code == 201

    assert warnings(caplog) == []
    assert (unexpected("below"), unexpected("above")) == (below, above)


def test_the_proxys_replays_of_one_interaction_count_once(api, user):
    funded_account(user, uses=5)
    below = unexpected("below")

    for _ in range(12):  # the proxy charges after every LLM call of the interaction, one key
        api.post(URL, charge_body(user, "litellm:int-1", amount=1), format="json")

    assert unexpected("below") == below + 1

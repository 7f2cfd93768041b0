"""purchases.stripe_api: how this service talks to Stripe."""

from __future__ import annotations

import stripe

from purchases.stripe_api import GLOBAL_NETWORK_RETRIES, GLOBAL_TIMEOUT_SECONDS


def test_the_stripe_librarys_global_client_has_a_short_timeout_and_bounded_retries():
    # dj-stripe refreshes its copies of our objects with it after a webhook commits
    # (webhooks.mirror): not the library's default 80 s.
    assert isinstance(stripe.default_http_client, stripe.RequestsClient)
    assert stripe.default_http_client._timeout == GLOBAL_TIMEOUT_SECONDS <= 10
    assert stripe.max_network_retries == GLOBAL_NETWORK_RETRIES <= 2

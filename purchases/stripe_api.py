"""How this service talks to Stripe: the few calls purchases make, and the library's global client.

Every call here is network I/O: callers make them outside any transaction or row lock,
with an idempotency key derived from a database id so a retry never makes a second object.
dj-stripe calls Stripe through the library's global client, which refuses to send a
request while a database transaction is open (`NoRequestInTransaction`).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings
from django.db import connection

from billing_site.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

# A slow Stripe must not hold a worker for the library's default 80 s.
STRIPE_TIMEOUT_SECONDS = 15
STRIPE_NETWORK_RETRIES = 2
# The stripe library's global client, used by dj-stripe (webhooks.mirror).
GLOBAL_TIMEOUT_SECONDS = 10
GLOBAL_NETWORK_RETRIES = 1
NOT_CONFIGURED = (
    "Purchases are unavailable: Stripe is not configured on this billing service "
    "(set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET)."
)


class StripeRequestInTransaction(Exception):
    """A Stripe request asked for while a database transaction is open: not sent."""


class NoRequestInTransaction(stripe.RequestsClient):
    """The global client: a request made while a transaction is open fails, unsent.

    dj-stripe fetches related objects it lacks from inside its own transactions. Sent, such
    a request would hold that transaction open for as long as Stripe takes to answer (on
    SQLite the database's one write lock, stopping every charge meanwhile). Refused, the
    dj-stripe operation fails instead, and its caller records the failure.
    """

    def request_with_retries(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if connection.in_atomic_block:
            raise StripeRequestInTransaction(f"Stripe {method.upper()} {url} refused: a database transaction is open")
        return super().request_with_retries(method, url, *args, **kwargs)


def configure_global_client() -> None:
    """Bound the stripe library's global client (dj-stripe's calls): 10 s, one retry, no transaction open."""
    stripe.default_http_client = NoRequestInTransaction(timeout=GLOBAL_TIMEOUT_SECONDS)
    stripe.max_network_retries = GLOBAL_NETWORK_RETRIES


def stripe_configured() -> bool:
    """All three keys are needed: without the webhook secret a payment could never credit."""
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_PUBLISHABLE_KEY and settings.STRIPE_WEBHOOK_SECRET)


def require_stripe() -> None:
    if not stripe_configured():
        raise ServiceUnavailable(NOT_CONFIGURED, retry_after=3600)


@lru_cache(maxsize=4)
def _client(api_key: str, api_host: str, retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_host} if api_host else None,
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_SECONDS),
    )


def stripe_client() -> stripe.StripeClient:
    # Read at call time: tests point STRIPE_API_HOST at a localstripe started after import.
    return _client(settings.STRIPE_SECRET_KEY, getattr(settings, "STRIPE_API_HOST", "") or "", STRIPE_NETWORK_RETRIES)


def _unavailable(exc: stripe.StripeError, what: str) -> ServiceUnavailable:
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (exc.http_status or 500) >= 500:
        logger.warning("stripe unavailable while %s: %s", what, exc)
        return ServiceUnavailable("The payment provider is unavailable, retry shortly.", retry_after=30)
    # Authentication, permission and request errors are ours (keys, parameters): an operator must look.
    logger.error("stripe refused while %s: %s", what, exc, extra={"stripe_error": type(exc).__name__})
    return ServiceUnavailable("The payment provider refused the request; the operator has been alerted.")


def customer_create(*, email: str, account_id: str, idempotency_key: str) -> str:
    """A Stripe Customer carrying the buyer's email (Stripe sends receipts to it)."""
    try:
        customer = stripe_client().v1.customers.create(
            params={"email": email, "metadata": {"account_id": account_id}},
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as exc:
        raise _unavailable(exc, "creating a customer") from exc
    return customer.id


def customer_update_email(*, customer_id: str, email: str) -> None:
    try:
        stripe_client().v1.customers.update(customer_id, params={"email": email})
    except stripe.StripeError as exc:
        raise _unavailable(exc, "updating a customer") from exc


def payment_intent_create(
    *,
    amount_minor: int,
    currency: str,
    metadata: dict[str, str],
    idempotency_key: str,
    customer_id: str = "",
) -> dict[str, Any]:
    """Create a card PaymentIntent; returns its id, client_secret and status."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "payment_method_types": ["card"],
        "metadata": metadata,
    }
    if customer_id:
        params["customer"] = customer_id
    try:
        intent = stripe_client().v1.payment_intents.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as exc:
        raise _unavailable(exc, "creating a payment intent") from exc
    return {"id": intent.id, "client_secret": intent.client_secret, "status": intent.status}

"""Prometheus metrics: request latency by route, and the billing domain's counters.

Under gunicorn (several worker processes) prometheus-client runs in multiprocess mode:
gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any worker imports this module, each
worker writes its values to files there, and /metrics merges them. Without that variable
(runserver, tests) the process-local default registry is used.

Domain counters count what happened, so they are incremented only after the money
transaction committed: from the views (after the service returned or raised) or through
`transaction.on_commit`. Never inside the transaction: a rollback would leave a count of
something that did not happen.

It counts; each money event is logged once, by the service where it happens. The one line
written here is a configuration warning: a charge amount other than one use's price.
"""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.db import transaction
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from billing_site.errors import (
    AccountInactive,
    BillingError,
    IdempotencyMismatch,
    InsufficientCredits,
)

logger = logging.getLogger("billing.events")

# --- HTTP -------------------------------------------------------------------------------
# Labelled by the URL pattern's name (e.g. "credits-check"), never the raw path: paths
# carry account ids and would make one series per account.
REQUEST_LATENCY = Histogram(
    "billing_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name and method.",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter(
    "billing_http_requests",
    "HTTP responses, by route name, method and status code.",
    ["route", "method", "status"],
)

# --- Credit checks and charges ------------------------------------------------------------
CHECK_RESULTS = ("ok", "free", "insufficient", "suspended", "closed")
CHARGE_RESULTS = ("ok", "free", "insufficient", "suspended", "closed", "duplicate", "mismatch", "refused")

CREDIT_CHECKS = Counter(
    "billing_credit_checks",
    "Credit checks by result: ok (paid credit), free (a free use), insufficient, suspended, closed.",
    ["result"],
)
CHARGES = Counter(
    "billing_charges",
    "Charges by result: ok (paid), free (a free use), insufficient (402), suspended/closed (403), "
    "duplicate (409 replay), mismatch (422: key reused with other parameters).",
    ["result"],
)
CHARGED_MINOR = Counter(
    "billing_charged_minor",
    "Credit minor units debited from paid balances by charges.",
)
CHARGE_AMOUNT_UNEXPECTED = Counter(
    "billing_charge_amount_unexpected",
    "Charge requests whose amount_minor is not BILLING_USE_PRICE_MINOR (below or above it): almost always a "
    "misconfiguration (the CIRIS clients charge 1 per interaction: set BILLING_USE_PRICE_MINOR=1).",
    ["direction"],
)

# --- Credit arriving: purchases, grants, adjustments -------------------------------------
CREDITS_GRANTED_MINOR = Counter(
    "billing_credits_granted_minor",
    "Paid credit added to balances, in credit minor units, by ledger entry kind (purchase, grant, ...).",
    ["kind"],
)
FREE_USES_GRANTED = Counter(
    "billing_free_uses_granted",
    "Free uses added to accounts, by ledger entry kind (free_uses_granted for new accounts, grant, ...).",
    ["kind"],
)

# --- Purchases and Stripe webhooks (called by the purchases and webhooks apps) ------------
PURCHASE_OUTCOMES = ("created", "succeeded", "failed", "canceled", "refunded", "partially_refunded")
PURCHASES = Counter(
    "billing_purchases",
    "Purchases by outcome: created (PaymentIntent made), succeeded (credited), failed, canceled, "
    "refunded, partially_refunded.",
    ["outcome"],
)
WEBHOOK_EVENTS = Counter(
    "billing_webhook_events",
    "Stripe webhook deliveries by event type and outcome: processed (200), rejected (400: bad signature or "
    "body, or no purchase of ours), not_ready (409), unavailable (503), error (500).",
    ["type", "outcome"],
)
# --- Reversals (purchases.reversals): the fraud signal --------------------------------------
CHARGEBACK_SHORTFALLS = Counter(
    "billing_chargeback_shortfalls",
    "Chargebacks that found the disputed credit already spent (the account is flagged).",
)
CHARGEBACK_SHORTFALL_MINOR = Counter(
    "billing_chargeback_shortfall_minor",
    "Credit minor units chargebacks could not take back because they were already spent.",
)

# Every series exists from the start (at 0), so a dashboard sees it before the first event.
for _result in CHECK_RESULTS:
    CREDIT_CHECKS.labels(result=_result)
for _result in CHARGE_RESULTS:
    CHARGES.labels(result=_result)
for _outcome in PURCHASE_OUTCOMES:
    PURCHASES.labels(outcome=_outcome)
for _direction in ("below", "above"):
    CHARGE_AMOUNT_UNEXPECTED.labels(direction=_direction)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(*, route: str, method: str, status: int, seconds: float) -> None:
    if method not in _METHODS:
        method = "other"  # any string can arrive as a method: keep the label set bounded
    REQUEST_LATENCY.labels(route, method).observe(seconds)
    REQUESTS.labels(route, method, str(status)).inc()


def observe_credit_check(*, result: str) -> None:
    CREDIT_CHECKS.labels(result=result).inc()


def observe_charge(*, result: str, debited_minor: int = 0) -> None:
    """Count a charge's outcome (one of CHARGE_RESULTS); call after its transaction ended."""
    CHARGES.labels(result=result).inc()
    if debited_minor:
        CHARGED_MINOR.inc(debited_minor)


# Amounts already warned about in this process (bounded: a caller cannot grow it forever).
_warned_amounts: set[int] = set()
_MAX_WARNED_AMOUNTS = 100


def observe_charge_amount(*, amount_minor: int) -> None:
    """Count (and warn once per process per amount) a charge amount other than one use's price."""
    price = settings.BILLING_USE_PRICE_MINOR
    if amount_minor == price:
        return
    CHARGE_AMOUNT_UNEXPECTED.labels(direction="below" if amount_minor < price else "above").inc()
    if amount_minor in _warned_amounts or len(_warned_amounts) >= _MAX_WARNED_AMOUNTS:
        return
    _warned_amounts.add(amount_minor)
    logger.warning(
        "charge amount differs from BILLING_USE_PRICE_MINOR",
        extra={
            "event": "charge_amount_unexpected",
            "amount_minor": amount_minor,
            "use_price_minor": price,
            "hint": "a use costs BILLING_USE_PRICE_MINOR; clients that charge 1 per interaction need it set to 1",
        },
    )


def charge_refusal_result(error: BillingError) -> str:
    """The CHARGES label for a charge the service refused."""
    if isinstance(error, InsufficientCredits):
        return "insufficient"
    if isinstance(error, AccountInactive):
        return "closed" if error.extra.get("status") == "closed" else "suspended"
    if isinstance(error, IdempotencyMismatch):
        return "mismatch"
    return "refused"


def observe_charge_refusal(error: BillingError) -> None:
    observe_charge(result=charge_refusal_result(error))


def observe_credits_granted(*, kind: str, amount_minor: int, free_uses: int) -> None:
    """Count credit added by a committed ledger entry (ledger_post registers this on commit)."""
    if amount_minor > 0:
        CREDITS_GRANTED_MINOR.labels(kind=kind).inc(amount_minor)
    if free_uses > 0:
        FREE_USES_GRANTED.labels(kind=kind).inc(free_uses)


def observe_purchase(*, outcome: str) -> None:
    """Count a purchase's step (one of PURCHASE_OUTCOMES) once it is committed.

    Safe inside a transaction: the count waits for the commit (and is dropped by a
    rollback). The purchases service logs its own money events.
    """
    transaction.on_commit(lambda: PURCHASES.labels(outcome=outcome).inc())


def observe_webhook_event(*, event_type: str, outcome: str) -> None:
    """Count a Stripe webhook delivery by event type and outcome, after dj-stripe's transaction."""
    WEBHOOK_EVENTS.labels(type=event_type[:64], outcome=outcome).inc()


def observe_chargeback_shortfall(*, amount_minor: int) -> None:
    """Count a chargeback that left a shortfall, once its transaction commits."""

    def count() -> None:
        CHARGEBACK_SHORTFALLS.inc()
        CHARGEBACK_SHORTFALL_MINOR.inc(amount_minor)

    transaction.on_commit(count)


def render_latest() -> bytes:
    """The Prometheus text exposition of every metric (merged across gunicorn workers)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client lacks its hint
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)

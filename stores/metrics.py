"""Prometheus counters of store purchases (the conventions of billing_site.metrics).

Labels stay bounded: `store` is a Store value, `result` one of the tuples below. Counted
after the transaction ended (the services call these once they returned or raised).
"""

from __future__ import annotations

from prometheus_client import Counter

from billing_site.errors import AccountInactive, BillingError

VERIFY_RESULTS = (
    "credited",
    "already_processed",
    "pending",
    "cancelled",
    "not_found",
    "voided",
    "other_account",
    "invalid_signature",
    "invalid",
    "inactive",
    "unavailable",
)

STORE_VERIFICATIONS = Counter(
    "billing_store_verifications",
    "Store purchase verifications by store and result: credited, already_processed (a replay), pending, "
    "cancelled, not_found, voided, invalid_signature (400s), other_account (409), invalid (422), inactive (403), "
    "unavailable (503: the store down or not configured).",
    ["store", "result"],
)
STORE_CONSUMES = Counter(
    "billing_store_consumes",
    "Consumes of credited store purchases by store and result (consumed, failed: retried later).",
    ["store", "result"],
)
STORE_VOIDS = Counter(
    "billing_store_voids",
    "Voided store purchases by store and result: reversed (credit taken back), before_credit (voided "
    "before any verification: never credited), duplicate (already voided).",
    ["store", "result"],
)

STORE_NOTIFICATIONS = Counter(
    "billing_store_notifications",
    "Store notifications by store and outcome: reversed, given_back, credited, before_credit (news kept "
    "for a purchase nobody verified yet), unchanged, stale (older than the news applied), ignored, duplicate.",
    ["store", "outcome"],
)

_CODE_RESULTS = {
    "purchase_pending": "pending",
    "purchase_cancelled": "cancelled",
    "purchase_not_found": "not_found",
    "purchase_voided": "voided",
    "purchase_invalid": "invalid_signature",
    "purchase_of_another_account": "other_account",
    "already_processed": "already_processed",
}


def result_of(refused: BillingError) -> str:
    if isinstance(refused, AccountInactive):
        return "inactive"
    if refused.status_code == 503:
        return "unavailable"
    return _CODE_RESULTS.get(refused.code, "invalid")


def observe_verification(*, store: str, result: str) -> None:
    STORE_VERIFICATIONS.labels(store=store, result=result).inc()


def observe_consume(*, store: str, result: str) -> None:
    STORE_CONSUMES.labels(store=store, result=result).inc()


def observe_void(*, store: str, result: str) -> None:
    STORE_VOIDS.labels(store=store, result=result).inc()


def observe_notification(*, store: str, outcome: str) -> None:
    STORE_NOTIFICATIONS.labels(store=store, outcome=outcome).inc()

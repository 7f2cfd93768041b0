"""Stripe's objects and events for one purchase's refunds and disputes, built the way Stripe renders them.

Each event carries its object as it was when the event happened, and the event's own
`created`; tests deliver them in any order, as Stripe may. `deliver` runs them through
the webhook's own routing (webhooks.handlers.process_payment_event) inside a savepoint,
as the delivery's transaction does: an event that raises leaves nothing behind.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Sum

from accounts.models import Account
from ledger.models import LedgerEntry
from purchases.matching import PaymentEventNotReady
from purchases.models import Purchase
from webhooks.handlers import process_payment_event

T0 = 1_767_000_000  # epoch seconds of the payment; later events are T0 + n


@dataclass(frozen=True)
class StripeEvent:
    type: str
    obj: dict[str, Any]
    id: str
    created: int

    def __repr__(self) -> str:  # short, so a failing permutation reads as a list of names
        return f"{self.type}@{self.created - T0}"


@dataclass
class PaymentStory:
    """The Stripe side of one purchase: its intent, charge, refunds and disputes."""

    purchase: Purchase
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def intent_id(self) -> str:
        return str(self.purchase.stripe_payment_intent_id)

    @property
    def charge_id(self) -> str:
        return "ch_" + self.intent_id.removeprefix("pi_")

    def event(self, event_type: str, obj: dict[str, Any], *, at: int) -> StripeEvent:
        return StripeEvent(type=event_type, obj=obj, id=f"evt_{self.intent_id[-8:]}_{next(self._ids)}", created=T0 + at)

    def intent(self, *, status: str = "succeeded") -> dict[str, Any]:
        p = self.purchase
        return {
            "id": self.intent_id,
            "object": "payment_intent",
            "amount": p.amount_minor,
            "amount_received": p.amount_minor if status == "succeeded" else 0,
            "currency": p.currency.lower(),
            "status": status,
            "latest_charge": self.charge_id,
            "metadata": {"purchase_id": str(p.pk), "account_id": str(p.account_id), "uses": str(p.uses)},
        }

    def refund(self, refund_id: str, *, amount: int, status: str, created: int = 1) -> dict[str, Any]:
        return {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "currency": self.purchase.currency.lower(),
            "charge": self.charge_id,
            "payment_intent": self.intent_id,
            "status": status,
            "created": T0 + created,
            "metadata": {},
        }

    def dispute(self, dispute_id: str, *, amount: int, status: str, created: int = 3) -> dict[str, Any]:
        return {
            "id": dispute_id,
            "object": "dispute",
            "amount": amount,
            "currency": self.purchase.currency.lower(),
            "charge": self.charge_id,
            "payment_intent": self.intent_id,
            "reason": "fraudulent",
            "status": status,
            "created": T0 + created,
            "metadata": {},
        }

    def charge(self, *, amount_refunded: int, refunds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        p = self.purchase
        charge: dict[str, Any] = {
            "id": self.charge_id,
            "object": "charge",
            "amount": p.amount_minor,
            "amount_refunded": amount_refunded,
            "refunded": amount_refunded >= p.amount_minor,
            "currency": p.currency.lower(),
            "payment_intent": self.intent_id,
            "created": T0,
            "metadata": {},
        }
        if refunds is not None:
            charge["refunds"] = {"object": "list", "data": refunds, "has_more": False}
        return charge


def deliver(event: StripeEvent) -> None:
    """One delivery, in its own savepoint like dj-stripe's transaction; raises what the webhook would answer."""
    with transaction.atomic():
        process_payment_event(event_type=event.type, obj=event.obj, event_id=event.id, event_created=event.created)


def deliver_all(events: list[StripeEvent]) -> None:
    """Deliver in this order; an event answered 409 (before the credit) is retried after the next
    successful delivery, as Stripe retries it later, and finally until none is left."""
    waiting: list[StripeEvent] = []
    for event in events:
        try:
            deliver(event)
        except PaymentEventNotReady:
            waiting.append(event)
            continue
        waiting = _retry(waiting)
    assert _retry(waiting) == [], "events still not ready after the credit"


def _retry(waiting: list[StripeEvent]) -> list[StripeEvent]:
    still = []
    for event in waiting:
        try:
            deliver(event)
        except PaymentEventNotReady:
            still.append(event)
    return still


def outcome(purchase: Purchase) -> tuple[int, int, str, int, int]:
    """(balance, ledger balance sum, purchase status, refunded, disputed) of the purchase's account."""
    account = Account.objects.get(pk=purchase.account_id)
    purchase.refresh_from_db()
    ledger = LedgerEntry.objects.filter(account=account).aggregate(s=Sum("balance_delta_minor"))["s"] or 0
    return (account.balance_minor, ledger, str(purchase.status), purchase.refunded_minor, purchase.disputed_minor)

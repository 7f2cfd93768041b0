"""What a Stripe Refund or Dispute state means for our credit, and which of two states is newer.

Pure functions, no database: the reversals service (purchases.reversals) records the
latest state of each Refund and Dispute and settles the credit from all of them.

Stripe does not order deliveries, and an event's object is the object *as it was when the
event happened*. A state replaces the stored one only if it got further (its status rank)
or, at the same rank, happened later (the event's `created`): so `funds_reinstated`
delivered before `created` still ends "won", and a refund that failed stays failed when
its older `refund.created` arrives last. Statuses only move forward in Stripe
(pending → succeeded → failed; inquiry → chargeback → won / lost), which is what makes the
rank a safe first key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from purchases.models import ReversalKind

logger = logging.getLogger(__name__)

# A refund takes money while it may still be paid out; failed and canceled ones take nothing.
REFUND_RANK = {"requires_action": 0, "pending": 0, "succeeded": 1, "failed": 2, "canceled": 2}
REFUND_TAKES_FUNDS = frozenset({"requires_action", "pending", "succeeded"})

# Inquiries (warning_*) withdraw no funds and may close without any; a chargeback withdraws
# them when it opens and gives them back only if we win.
DISPUTE_RANK = {
    "warning_needs_response": 0,
    "warning_under_review": 1,
    "needs_response": 2,
    "under_review": 3,
    "won": 4,
    "lost": 4,
    "warning_closed": 4,
    "prevented": 4,
}
DISPUTE_TAKES_FUNDS = frozenset({"needs_response", "under_review", "lost"})
DISPUTE_CLOSED = frozenset({"won", "lost", "warning_closed", "prevented"})


@dataclass(frozen=True)
class ReversalState:
    """One Refund, Dispute or charge refunded total, as one event shows it."""

    stripe_id: str
    kind: ReversalKind
    amount_minor: int
    status: str
    stripe_created: int
    event_created: int
    charge_id: str = ""

    @property
    def rank(self) -> int:
        if self.kind == ReversalKind.REFUND:
            return REFUND_RANK.get(self.status, 0)
        if self.kind == ReversalKind.DISPUTE:
            return DISPUTE_RANK.get(self.status, 0)
        return 0

    @property
    def takes_funds(self) -> bool:
        if self.kind == ReversalKind.REFUND:
            return self.status in REFUND_TAKES_FUNDS or self.status not in REFUND_RANK
        if self.kind == ReversalKind.DISPUTE:
            # An unknown status takes the credit: better a give-back later than credit minted now.
            return self.status in DISPUTE_TAKES_FUNDS or self.status not in DISPUTE_RANK
        return self.amount_minor > 0

    def precedence(self) -> tuple[int, int]:
        """Compared with `stored_precedence`: the greater state is the one to keep."""
        if self.kind == ReversalKind.CHARGE_REFUNDS:
            # amount_refunded has no status: the later event wins; within one second, the larger.
            return (self.event_created, self.amount_minor)
        return (self.rank, self.event_created)


def stored_precedence(*, kind: str, state_rank: int, state_created: int, amount_minor: int) -> tuple[int, int]:
    if kind == ReversalKind.CHARGE_REFUNDS:
        return (state_created, amount_minor)
    return (state_rank, state_created)


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _charge_of(obj: dict[str, Any]) -> str:
    charge = obj.get("charge")
    charge = charge.get("id") if isinstance(charge, dict) else charge
    return charge if isinstance(charge, str) else ""


def refund_state(refund: dict[str, Any], *, event_type: str, event_created: int) -> ReversalState:
    status = str(refund.get("status") or "")
    if event_type == "refund.failed" and status not in ("failed", "canceled"):
        status = "failed"  # the event says so, whatever the object was rendered with
    if status not in REFUND_RANK:
        logger.warning(
            "unknown refund status taken as taking funds", extra={"refund": refund.get("id"), "status": status}
        )
    return ReversalState(
        stripe_id=str(refund["id"]),
        kind=ReversalKind.REFUND,
        amount_minor=_int(refund.get("amount")),
        status=status,
        stripe_created=_int(refund.get("created")),
        event_created=event_created,
        charge_id=_charge_of(refund),
    )


def dispute_state(dispute: dict[str, Any], *, event_type: str, event_created: int) -> ReversalState:
    status = str(dispute.get("status") or "")
    if event_type == "charge.dispute.funds_reinstated" and status not in DISPUTE_CLOSED:
        status = "won"  # the funds are ours again: whatever it says, it no longer takes them
    if status not in DISPUTE_RANK:
        logger.warning(
            "unknown dispute status taken as taking funds", extra={"dispute": dispute.get("id"), "status": status}
        )
    return ReversalState(
        stripe_id=str(dispute["id"]),
        kind=ReversalKind.DISPUTE,
        amount_minor=_int(dispute.get("amount")),
        status=status,
        stripe_created=_int(dispute.get("created")),
        event_created=event_created,
        charge_id=_charge_of(dispute),
    )


def listed_refunds(charge: dict[str, Any]) -> list[dict[str, Any]]:
    """The Refund objects a Charge carries (an expanded `refunds` list), if any."""
    refunds = charge.get("refunds")
    data = refunds.get("data") if isinstance(refunds, dict) else refunds
    if not isinstance(data, list):
        return []
    return [r for r in data if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"]]


def charge_refund_status(charge: dict[str, Any]) -> str:
    if charge.get("refunded") is True:
        return "refunded"
    return "partially_refunded" if _int(charge.get("amount_refunded")) > 0 else "not_refunded"


def charge_states(charge: dict[str, Any], *, event_created: int) -> list[ReversalState]:
    """A `charge.refunded` Charge: its listed Refunds, and its refunded total (amount_refunded)."""
    states = [
        refund_state({"charge": charge["id"], **r}, event_type="charge.refunded", event_created=event_created)
        for r in listed_refunds(charge)
    ]
    states.append(
        ReversalState(
            stripe_id=str(charge["id"]),
            kind=ReversalKind.CHARGE_REFUNDS,
            amount_minor=_int(charge.get("amount_refunded")),
            status=charge_refund_status(charge),
            stripe_created=_int(charge.get("created")),
            event_created=event_created,
            charge_id=str(charge["id"]),
        )
    )
    return states

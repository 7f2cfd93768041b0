"""What a verified Stripe delivery does: its Event is stored, then our services move the money.

dj-stripe receives every delivery (webhooks.views), stores it as a WebhookEventTrigger,
verifies its signature, and then, inside one transaction, hands it to `process_delivery`
(settings.DJSTRIPE_WEBHOOK_EVENT_CALLBACK) in place of its own receivers:
1. the Event is stored from the body Stripe signed (no fetch from Stripe); an event id
   already stored is a replay, and nothing more happens;
2. the service for its type (`process_payment_event`) matches the object to a purchase of
   ours once (purchases.matching: ours at all? same account, amount, currency?) and moves
   the money with the account row locked. Events about payments that are not ours, and
   event types we do not act on, are stored and credit nothing.
Anything raised rolls the whole delivery back, the Event too, so Stripe's next delivery is
processed afresh; dj-stripe keeps the exception and traceback on the trigger row. No Stripe
request is made here: the transaction holds the account row lock. Once it has committed,
dj-stripe's copy of the object is refreshed from Stripe (webhooks.mirror).

The event log is dj-stripe's: one Event per event processed, and one WebhookEventTrigger
per delivery, linked to its Event, with its outcome (valid, processed) and its error
(exception, traceback), as the admin shows them.
"""

from __future__ import annotations

import datetime
import functools
import logging
from typing import Any

from django.db import IntegrityError, transaction
from djstripe.models import Account as StripeAccount
from djstripe.models import Event, WebhookEventTrigger

from purchases.matching import PaymentEventRejected, is_refund_event
from purchases.models import PurchaseStatus
from purchases.reversals import purchase_dispute, purchase_refund, purchase_refund_changed
from purchases.services import purchase_credit_from_intent, purchase_mark_failed
from webhooks import mirror

logger = logging.getLogger(__name__)

INTENT_EVENTS = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"})
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    }
)
# Events about a payment's charge: its refunds and its disputes.
CHARGE_EVENTS = frozenset({"charge.refunded"}) | REFUND_EVENTS | DISPUTE_EVENTS
# Every event type the service acts on (setup_stripe_webhook lists them for the dashboard).
HANDLED_EVENTS = tuple(sorted(INTENT_EVENTS | CHARGE_EVENTS))


def process_delivery(trigger: WebhookEventTrigger, *, api_key: str | None = None, **kwargs: Any) -> None:
    """dj-stripe's WEBHOOK_EVENT_CALLBACK: a verified delivery, inside dj-stripe's transaction."""
    body: dict[str, Any] = trigger.json_body
    event, stored_now = _store_event(body, owner=trigger.stripe_trigger_account)
    if not stored_now:
        logger.info("stripe event already processed", extra={"stripe_event": event.id})
    elif body["type"] in HANDLED_EVENTS:
        obj = _payload(body, event.id)
        process_payment_event(
            event_type=body["type"], obj=obj, event_id=event.id, event_created=_epoch(body.get("created"))
        )
        transaction.on_commit(
            functools.partial(mirror.refresh, trigger=trigger, obj=obj, api_key=api_key),
            robust=True,  # webhooks.mirror records its own failures; the credit has committed
        )
    # Only once nothing can fail any more: dj-stripe saves the trigger after a failure too.
    trigger.event, trigger.processed = event, True


def process_payment_event(*, event_type: str, obj: dict[str, Any], event_id: str, event_created: int) -> None:
    """Route one verified event to its service (tests call it directly)."""
    if event_type == "payment_intent.succeeded":
        purchase_credit_from_intent(intent=obj, event_id=event_id)
    elif event_type == "payment_intent.payment_failed":
        purchase_mark_failed(intent=obj, event_id=event_id, status=PurchaseStatus.FAILED)
    elif event_type == "payment_intent.canceled":
        purchase_mark_failed(intent=obj, event_id=event_id, status=PurchaseStatus.CANCELED)
    elif event_type == "charge.refunded":
        purchase_refund(charge=obj, event_id=event_id, event_created=event_created)
    elif is_refund_event(event_type):
        purchase_refund_changed(refund=obj, event_type=event_type, event_id=event_id, event_created=event_created)
    elif event_type in DISPUTE_EVENTS:
        purchase_dispute(dispute=obj, event_type=event_type, event_id=event_id, event_created=event_created)
    else:
        raise ValueError(f"not a payment event: {event_type}")


def _store_event(body: dict[str, Any], *, owner: StripeAccount | None) -> tuple[Event, bool]:
    """The Event row for this body, and whether this delivery stored it (False: a replay)."""
    stored = Event.objects.filter(id=body["id"]).first()
    if stored is not None:
        return stored, False
    request = body.get("request")
    request = request if isinstance(request, dict) else {"id": request}
    try:
        with transaction.atomic():
            event = Event.objects.create(
                id=body["id"],
                type=body["type"],
                livemode=body["livemode"],
                api_version=body.get("api_version") or "",
                created=datetime.datetime.fromtimestamp(_epoch(body.get("created")), tz=datetime.UTC),
                data=body["data"],
                request_id=request.get("id") or "",
                idempotency_key=request.get("idempotency_key") or "",
                stripe_data=body,
                djstripe_owner_account=owner,
            )
    except IntegrityError:
        # The same event delivered twice at once: the other delivery stored it, and acted on it.
        return Event.objects.get(id=body["id"]), False
    return event, True


def _payload(body: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The event's `data.object` (the PaymentIntent, Charge, Refund or Dispute)."""
    payload = body["data"].get("object")
    if not isinstance(payload, dict):
        logger.error("stripe event without an object", extra={"stripe_event": event_id})
        raise PaymentEventRejected("event has no data.object")
    return payload


def _epoch(value: Any) -> int:
    """The event's `created` (epoch seconds), 0 when absent."""
    return value if type(value) is int else 0

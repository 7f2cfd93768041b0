"""Stripe events that move money, received through dj-stripe.

dj-stripe verifies each delivery's signature, stores it (WebhookEventTrigger, and the
Event once processed) and calls these receivers inside its transaction: anything raised
here rolls the whole delivery back, the trigger row keeps the traceback, and the webhook
answers non-2xx so Stripe delivers again. A replayed event id is answered 200 by dj-stripe
without calling the receivers again; the ledger's unique constraints make a second credit
impossible even so. Refund and dispute events record the state of their Refund or
Dispute and settle the credit from the latest state of each (purchases.reversals), so they
converge in any delivery order. Event types not listed here are stored by dj-stripe and answered 200,
and so are events about payments that are not ours (the Stripe account may take others):
those are logged as errors and credit nothing (purchases.matching.payment_is_ours).

This path calls Stripe: dj-stripe's own receivers run before ours and fetch the event's
object (PaymentIntent, Charge, Dispute, PaymentMethod; not Refunds) from Stripe, inside the webhook's
transaction. The stripe library's global client is bounded for that (short timeout, one
retry: purchases.stripe_api.configure_global_client); a failure there answers 500, rolls
back, and Stripe delivers again. Our own receivers make no network call.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver
from djstripe.event_handlers import djstripe_receiver
from djstripe.models import Event, WebhookEventTrigger
from djstripe.signals import webhook_post_validate

from purchases.matching import PaymentEventRejected, check_payment_event, is_refund_event
from purchases.models import PurchaseStatus
from purchases.reversals import purchase_dispute, purchase_refund, purchase_refund_changed
from purchases.services import purchase_credit_from_intent, purchase_mark_failed

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
# Every event type the service needs Stripe to send (setup_stripe_webhook lists them).
HANDLED_EVENTS = tuple(sorted(INTENT_EVENTS | CHARGE_EVENTS))


def _payload(data: Any, event_id: str) -> dict[str, Any]:
    """The event's `data.object` (the PaymentIntent, Charge, Refund or Dispute)."""
    payload = data.get("object") if isinstance(data, dict) else None
    if not isinstance(payload, dict):
        logger.error("stripe event without an object", extra={"stripe_event": event_id})
        raise PaymentEventRejected("event has no data.object")
    return payload


@receiver(webhook_post_validate, sender=WebhookEventTrigger, dispatch_uid="ciris_check_payment_events")
def check_event_before_sync(sender: type, instance: WebhookEventTrigger, valid: bool, **kwargs: Any) -> None:
    """Refuse a verified event about a purchase of ours that disagrees with it (another
    account, amount, currency) before dj-stripe syncs its object from Stripe.

    Events about payments that are not ours pass: dj-stripe stores (and syncs) them and our
    receivers ignore them. This check only reads; the receivers check again and do the work.
    """
    if not valid:
        return
    body = instance.json_body
    event_type, event_id = body.get("type"), str(body.get("id"))
    if event_type in INTENT_EVENTS or event_type in CHARGE_EVENTS:
        check_payment_event(event_type=event_type, obj=_payload(body.get("data"), event_id), event_id=event_id)


def process_payment_event(*, event_type: str, obj: dict[str, Any], event_id: str, event_created: int) -> None:
    """Route one verified event to its service (the receivers below; tests call it directly)."""
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


def _created(event: Event) -> int:
    """The event's `created` (epoch seconds), from the body Stripe signed."""
    created = event.created
    return int(created.timestamp()) if created is not None else 0


@djstripe_receiver(sorted(HANDLED_EVENTS))
def on_payment_event(sender: type, event: Event, **kwargs: Any) -> None:
    process_payment_event(
        event_type=event.type, obj=_payload(event.data, event.id), event_id=event.id, event_created=_created(event)
    )

"""Stripe events that move money, received through dj-stripe.

dj-stripe verifies each delivery's signature, stores it (WebhookEventTrigger, and the
Event once processed) and calls these receivers inside its transaction: anything raised
here rolls the whole delivery back, the trigger row keeps the traceback, and the webhook
answers non-2xx so Stripe delivers again. A replayed event id is answered 200 by dj-stripe
without calling the receivers again; the ledger's unique constraints make a second credit
impossible even so. Event types not listed here are stored by dj-stripe and answered 200.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver
from djstripe.event_handlers import djstripe_receiver
from djstripe.models import Event, WebhookEventTrigger
from djstripe.signals import webhook_post_validate

from purchases.models import PurchaseStatus
from purchases.services import (
    PaymentEventRejected,
    charge_purchase,
    payment_intent_purchase,
    purchase_credit_from_intent,
    purchase_mark_failed,
    purchase_refund,
)

logger = logging.getLogger(__name__)

INTENT_EVENTS = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"})
CHARGE_EVENTS = frozenset({"charge.refunded"})


def _payload(data: Any, event_id: str) -> dict[str, Any]:
    """The event's `data.object` (the PaymentIntent or Charge)."""
    payload = data.get("object") if isinstance(data, dict) else None
    if not isinstance(payload, dict):
        logger.error("stripe event without an object", extra={"stripe_event": event_id})
        raise PaymentEventRejected("event has no data.object")
    return payload


@receiver(webhook_post_validate, sender=WebhookEventTrigger, dispatch_uid="ciris_check_payment_events")
def check_payment_event(sender: type, instance: WebhookEventTrigger, valid: bool, **kwargs: Any) -> None:
    """Refuse a verified event that matches no purchase of ours before dj-stripe syncs it.

    dj-stripe's own receivers run first and fetch the object from Stripe; for an intent
    that is not ours that would fail as a 500 (retried forever) instead of our 400. This
    check only reads; the receivers below check again and do the work.
    """
    if not valid:
        return
    body = instance.json_body
    event_type, event_id = body.get("type"), str(body.get("id"))
    if event_type in INTENT_EVENTS:
        payment_intent_purchase(intent=_payload(body.get("data"), event_id), event_id=event_id)
    elif event_type in CHARGE_EVENTS:
        charge_purchase(charge=_payload(body.get("data"), event_id), event_id=event_id)


@djstripe_receiver("payment_intent.succeeded")
def on_payment_intent_succeeded(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_credit_from_intent(intent=_payload(event.data, event.id), event_id=event.id)


@djstripe_receiver("payment_intent.payment_failed")
def on_payment_intent_failed(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_mark_failed(intent=_payload(event.data, event.id), event_id=event.id, status=PurchaseStatus.FAILED)


@djstripe_receiver("payment_intent.canceled")
def on_payment_intent_canceled(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_mark_failed(intent=_payload(event.data, event.id), event_id=event.id, status=PurchaseStatus.CANCELED)


@djstripe_receiver("charge.refunded")
def on_charge_refunded(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_refund(charge=_payload(event.data, event.id), event_id=event.id)

"""Stripe events that move money, received through dj-stripe.

dj-stripe verifies each delivery's signature, stores it (WebhookEventTrigger, and the
Event once processed) and calls these receivers inside its transaction: anything raised
here rolls the whole delivery back, the trigger row keeps the traceback, and the webhook
answers non-2xx so Stripe delivers again. A replayed event id is answered 200 by dj-stripe
without calling the receivers again; the ledger's unique constraints make a second credit
impossible even so. Event types not listed here are stored by dj-stripe and answered 200,
and so are events about payments that are not ours (the Stripe account may take others):
those are logged as errors and credit nothing (purchases.matching.payment_is_ours).

This path calls Stripe: dj-stripe's own receivers run before ours and fetch the event's
object (PaymentIntent, Charge, Dispute, PaymentMethod) from Stripe, inside the webhook's
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

from purchases.matching import PaymentEventRejected, check_payment_event
from purchases.models import PurchaseStatus
from purchases.reversals import purchase_dispute, purchase_dispute_reinstated, purchase_refund
from purchases.services import purchase_credit_from_intent, purchase_mark_failed

logger = logging.getLogger(__name__)

INTENT_EVENTS = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"})
CHARGE_EVENTS = frozenset({"charge.refunded", "charge.dispute.created", "charge.dispute.funds_reinstated"})


def _payload(data: Any, event_id: str) -> dict[str, Any]:
    """The event's `data.object` (the PaymentIntent or Charge)."""
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


@djstripe_receiver("payment_intent.succeeded")
def on_payment_intent_succeeded(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_credit_from_intent(intent=_payload(event.data, event.id), event_id=event.id)


@djstripe_receiver("payment_intent.payment_failed")
def on_payment_intent_failed(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_mark_failed(intent=_payload(event.data, event.id), event_id=event.id, status=PurchaseStatus.FAILED)


@djstripe_receiver("payment_intent.canceled")
def on_payment_intent_canceled(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_mark_failed(intent=_payload(event.data, event.id), event_id=event.id, status=PurchaseStatus.CANCELED)


def _created(event: Event) -> int:
    """The event's `created` (epoch seconds), from the body Stripe signed."""
    created = event.created
    return int(created.timestamp()) if created is not None else 0


@djstripe_receiver("charge.refunded")
def on_charge_refunded(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_refund(charge=_payload(event.data, event.id), event_id=event.id, event_created=_created(event))


@djstripe_receiver("charge.dispute.created")
def on_charge_dispute_created(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_dispute(dispute=_payload(event.data, event.id), event_id=event.id)


@djstripe_receiver("charge.dispute.funds_reinstated")
def on_charge_dispute_funds_reinstated(sender: type, event: Event, **kwargs: Any) -> None:
    purchase_dispute_reinstated(dispute=_payload(event.data, event.id), event_id=event.id)

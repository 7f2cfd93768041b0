"""dj-stripe's copies of the objects our events are about, refreshed after the delivery commits.

The copies (PaymentIntent, Charge, Refund, Dispute rows of dj-stripe) are for people: the
admin shows them, and `reconcile_reversals` compares our Reversal rows with them. The
ledger never reads them, so they are refreshed only once the credit has committed, with
no transaction open, and a failure here is logged and recorded on the delivery's trigger
row (`exception`, `traceback`) but changes nothing that was credited: the next event
about the object refreshes it again.

The object is fetched from Stripe rather than copied from the event (an event's payload
may be older than a state already stored, as Stripe does not order deliveries), then
stored by dj-stripe (`sync_from_stripe_data`). dj-stripe fetches any related object it
lacks (customer, payment method, charge...) from inside its own transaction; the stripe
library's global client refuses that (purchases.stripe_api.NoRequestInTransaction). So
those objects are fetched and stored first, here, each before the object that names it.
Two objects that name each other (a customer and its default payment method) cannot both
go first: that refresh fails and is recorded.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from django.db import models
from djstripe.models import Account as StripeAccount
from djstripe.models import APIKey, Charge, Dispute, PaymentIntent, Refund, StripeModel, WebhookEventTrigger
from djstripe.settings import djstripe_settings

logger = logging.getLogger(__name__)

MIRRORED: dict[str, type[StripeModel]] = {
    "payment_intent": PaymentIntent,
    "charge": Charge,
    "refund": Refund,
    "dispute": Dispute,
}


def refresh(*, trigger: WebhookEventTrigger, obj: dict[str, Any], api_key: str | None) -> None:
    """Refresh dj-stripe's copy of the event's object; call with no transaction open."""
    model = MIRRORED.get(obj.get("object"))  # type: ignore[arg-type]
    object_id = obj.get("id")
    if model is None or not isinstance(object_id, str):
        return
    api_key = api_key or djstripe_settings.get_default_api_key(livemode=obj.get("livemode"))
    try:
        _know_owner_account(api_key)
        _store(model, object_id, api_key=api_key, underway=set())
    except Exception as exc:  # whatever dj-stripe or Stripe raised: recorded, never re-raised
        logger.warning(
            "dj-stripe's copy of a stripe object not refreshed: %s",
            exc,
            extra={"stripe_object": object_id, "stripe_event": trigger.event_id},
        )
        trigger.exception = f"copy of {object_id} not refreshed: {exc}"[:128]
        trigger.traceback = traceback.format_exc()
        trigger.save(update_fields=["exception", "traceback", "updated"])


def _know_owner_account(api_key: str) -> None:
    """dj-stripe links every stored object to the Stripe account of its API key, and asks
    Stripe for that account (from inside its transaction) while it does not know it. So
    the account is fetched here, and linked to the key before dj-stripe stores it
    (`APIKey.refresh_account` would store it first, and ask Stripe again while storing)."""
    key, _ = APIKey.objects.get_or_create_by_api_key(api_key)
    if key.djstripe_owner_account_id is not None:
        return
    data = StripeAccount.stripe_class.retrieve(api_key=api_key, stripe_version=djstripe_settings.STRIPE_API_VERSION)
    key.djstripe_owner_account, _ = StripeAccount.objects.get_or_create(id=data["id"])
    key.save(update_fields=["djstripe_owner_account"])
    StripeAccount.sync_from_stripe_data(data, api_key=api_key)


def _store(model: type[StripeModel], object_id: str, *, api_key: str, underway: set[str]) -> None:
    """Fetch the object, store the related objects it names that dj-stripe lacks, then store it."""
    underway.add(object_id)
    data = model.stripe_class.retrieve(
        object_id, api_key=api_key, stripe_version=djstripe_settings.STRIPE_API_VERSION
    ).to_dict(for_json=True)
    # The fields as dj-stripe reads them (a Customer's default payment method is under its
    # invoice_settings). A private hook of dj-stripe's: the refresh tests fail without it.
    fields = model._manipulate_stripe_object_hook(data)
    for field in _related_stripe_fields(model):
        related_id = fields.get(field.name)
        if not isinstance(related_id, str) or related_id in underway:
            # None, an expanded object (stored as given), or one being stored further up
            # (a cycle: dj-stripe would fetch it inside its transaction, which is refused).
            continue
        related: type[StripeModel] = field.related_model
        if not related.objects.filter(id=related_id).exists():
            _store(related, related_id, api_key=api_key, underway=underway)
    model.sync_from_stripe_data(data, api_key=api_key)


def _related_stripe_fields(model: type[StripeModel]) -> list[models.ForeignKey[Any, Any]]:
    return [
        field
        for field in model._meta.get_fields()
        if isinstance(field, models.ForeignKey)
        and not field.name.startswith("djstripe_")
        and isinstance(field.related_model, type)
        and issubclass(field.related_model, StripeModel)
    ]

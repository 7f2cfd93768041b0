"""Is this Stripe event about a purchase of ours, and does it agree with the purchase we created?

Events for payments that are not ours (the Stripe account also takes other payments: no
`metadata.purchase_id` naming a purchase of ours, and a PaymentIntent id we never made)
are ignored with an error logged, and answered 200: refusing them would make Stripe retry
them for days and eventually disable the endpoint, stopping our own credits. Events about
one of our purchases that disagree with it (another account, amount or currency) are
refused (PaymentEventRejected, 400): an operator must look.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from djstripe.models import Charge as StripeCharge

from purchases.models import Purchase, Reversal

logger = logging.getLogger(__name__)


class PaymentEventRejected(Exception):
    """A (verified) Stripe event about a purchase of ours that disagrees with it: nothing is credited.

    The webhook answers 400. Stripe signed it, so this is our data disagreeing with
    Stripe's (metadata naming our purchase with an unknown PaymentIntent, another account's
    purchase, a changed amount): an operator must look, hence logged as an error. Events
    about payments that are not ours at all are not refused (see `payment_is_ours`).
    """


class PaymentEventNotReady(Exception):
    """The event arrived before one it depends on (a refund before the credit): retry later."""


def reject(reason: str, *, event_id: str, **context: Any) -> PaymentEventRejected:
    logger.error(
        "stripe event rejected: %s",
        reason,
        extra={"stripe_event": event_id, "reason": reason, **{k: str(v) for k, v in context.items()}},
    )
    return PaymentEventRejected(reason)


def metadata_of(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def payment_is_ours(*, intent_id: Any, metadata: Any) -> bool:
    """Whether a Stripe payment object belongs to a purchase of ours.

    Ours: its PaymentIntent id is one we stored, or its `metadata.purchase_id` names one of
    our purchases (an intent whose id we failed to store is still ours, and refused). Any
    other payment on the Stripe account is someone else's: not ours to credit or refuse.
    """
    if isinstance(intent_id, str) and intent_id:
        if Purchase.objects.filter(stripe_payment_intent_id=intent_id).exists():
            return True
    purchase_id = metadata.get("purchase_id") if isinstance(metadata, dict) else None
    try:
        purchase_pk = uuid.UUID(purchase_id) if isinstance(purchase_id, str) else None
    except ValueError:
        return False
    return purchase_pk is not None and Purchase.objects.filter(pk=purchase_pk).exists()


def ignored_if_not_ours(*, intent_id: Any, obj: dict[str, Any], event_id: str) -> bool:
    """True (and an error logged) when the event is about a payment that is not ours."""
    if payment_is_ours(intent_id=intent_id, metadata=metadata_of(obj)):
        return False
    # An error, not a warning: on an account that should only take our payments, an
    # operator must see it; on a shared account it is the expected noise of others' payments.
    logger.error(
        "stripe event not ours, ignored",
        extra={"stripe_event": event_id, "payment_intent": str(intent_id), "stripe_object": str(obj.get("id"))},
    )
    return True


def _purchase_for_intent(*, intent_id: Any, event_id: str) -> Purchase:
    purchase = (
        Purchase.objects.filter(stripe_payment_intent_id=intent_id).first()
        if isinstance(intent_id, str) and intent_id
        else None
    )
    if purchase is None:
        # Its metadata names a purchase of ours, whose intent is another one (or unknown).
        raise reject("unknown payment intent", event_id=event_id, payment_intent=intent_id)
    return purchase


def _check_intent_metadata(purchase: Purchase, intent: dict[str, Any], *, event_id: str) -> None:
    metadata = metadata_of(intent)
    if metadata.get("purchase_id") != str(purchase.pk) or metadata.get("account_id") != str(purchase.account_id):
        raise reject(
            "payment intent names another purchase or account",
            event_id=event_id,
            payment_intent=purchase.stripe_payment_intent_id,
            purchase_id=purchase.pk,
            metadata_purchase=metadata.get("purchase_id"),
            metadata_account=metadata.get("account_id"),
        )


def _check_money(purchase: Purchase, *, amounts: list[Any], currency: Any, event_id: str) -> None:
    currency_ok = isinstance(currency, str) and currency.upper() == purchase.currency.upper()
    if not currency_ok or any(a != purchase.amount_minor for a in amounts):
        raise reject(
            "amount or currency differs from the purchase",
            event_id=event_id,
            purchase_id=purchase.pk,
            expected=f"{purchase.amount_minor} {purchase.currency}",
            received=f"{amounts} {currency}",
        )


def payment_intent_purchase(*, intent: dict[str, Any], event_id: str) -> Purchase:
    """The Purchase this PaymentIntent (one of ours) pays for, checked against what we created."""
    purchase = _purchase_for_intent(intent_id=intent.get("id"), event_id=event_id)
    _check_intent_metadata(purchase, intent, event_id=event_id)
    amounts = [intent.get("amount")]
    if "amount_received" in intent and intent.get("status") == "succeeded":
        amounts.append(intent["amount_received"])
    _check_money(purchase, amounts=amounts, currency=intent.get("currency"), event_id=event_id)
    return purchase


def charge_purchase(*, charge: dict[str, Any], event_id: str) -> Purchase:
    """The Purchase a Stripe Charge (one of ours) paid, checked against what we created."""
    purchase = _purchase_for_intent(intent_id=charge.get("payment_intent"), event_id=event_id)
    _check_money(purchase, amounts=[charge.get("amount")], currency=charge.get("currency"), event_id=event_id)
    if metadata_of(charge).get("purchase_id") not in (None, str(purchase.pk)):
        raise reject("charge names another purchase", event_id=event_id, purchase_id=purchase.pk)
    return purchase


def dispute_purchase(*, dispute: dict[str, Any], event_id: str) -> Purchase:
    """The Purchase a Stripe Dispute (chargeback, one of ours) is about, checked."""
    purchase = _purchase_for_intent(intent_id=dispute.get("payment_intent"), event_id=event_id)
    amount, currency = dispute.get("amount"), dispute.get("currency")
    currency_ok = isinstance(currency, str) and currency.upper() == purchase.currency.upper()
    if not currency_ok or type(amount) is not int or not 0 < amount <= purchase.amount_minor:
        raise reject(
            "disputed amount or currency does not fit the purchase",
            event_id=event_id,
            purchase_id=purchase.pk,
            received=f"{amount} {currency}",
        )
    return purchase


def _id_of(value: Any) -> Any:
    """A Stripe reference: an id, or an expanded object carrying one."""
    return value.get("id") if isinstance(value, dict) else value


def refund_intent_id(refund: dict[str, Any]) -> Any:
    """The PaymentIntent a Stripe Refund belongs to: its own field, else through its Charge.

    Refunds made before Stripe added `payment_intent` to them name only the charge; we find
    its intent in dj-stripe's stored Charge, or in the charge-level reversal we recorded.
    """
    intent_id = _id_of(refund.get("payment_intent"))
    if isinstance(intent_id, str) and intent_id:
        return intent_id
    charge_id = _id_of(refund.get("charge"))
    if not isinstance(charge_id, str) or not charge_id:
        return intent_id
    stored = StripeCharge.objects.filter(id=charge_id).values_list("payment_intent_id", flat=True).first()
    if stored:
        return stored
    return (
        Reversal.objects.filter(stripe_id=charge_id)
        .values_list("purchase__stripe_payment_intent_id", flat=True)
        .first()
    )


def refund_purchase(*, refund: dict[str, Any], event_id: str) -> Purchase:
    """The Purchase a Stripe Refund (one of ours) takes money back from, checked."""
    purchase = _purchase_for_intent(intent_id=refund_intent_id(refund), event_id=event_id)
    amount, currency = refund.get("amount"), refund.get("currency")
    currency_ok = isinstance(currency, str) and currency.upper() == purchase.currency.upper()
    refund_id = refund.get("id")
    if not isinstance(refund_id, str) or not refund_id:
        raise reject("refund without an id", event_id=event_id, purchase_id=purchase.pk)
    if not currency_ok or type(amount) is not int or not 0 < amount <= purchase.amount_minor:
        raise reject(
            "refunded amount or currency does not fit the purchase",
            event_id=event_id,
            purchase_id=purchase.pk,
            received=f"{amount} {currency}",
        )
    return purchase


def is_refund_event(event_type: str) -> bool:
    """Events whose object is a Refund (charge.refund.updated is the older name of refund.updated)."""
    return event_type.startswith("refund.") or event_type == "charge.refund.updated"

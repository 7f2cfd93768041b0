"""Buying credit packs through Stripe: create the payment, then credit it once.

The money path:
1. `purchase_create` writes a Purchase (status "created") before calling Stripe, then
   creates the PaymentIntent with an idempotency key derived from the Purchase id, then
   stores the intent. No network call ever runs inside a transaction or a row lock.
2. Stripe confirms the card in the buyer's browser and sends `payment_intent.succeeded`;
   dj-stripe verifies and stores the delivery and calls `purchase_credit_from_intent`,
   which checks the event against the Purchase we created (purchases.matching: never
   trusting the event's amount, currency or metadata on their own) and adds the credit in
   one transaction with the account row locked. The ledger's unique constraint makes a
   second credit for the same purchase impossible, whatever Stripe delivers and however often.
Refunds and chargebacks are purchases.reversals.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.identity import Identity
from accounts.models import Account
from accounts.services import account_get_or_create
from billing_site import metrics
from billing_site.errors import AccountInactive, IdempotencyMismatch, InvalidOperation
from ledger.models import EntryKind, LedgerEntry
from ledger.services import MAX_BALANCE_MINOR, ledger_post
from purchases import stripe_api
from purchases.locking import lock_account_and_purchase
from purchases.matching import (
    ignored_if_not_ours,
    payment_intent_purchase,
    reject,
)
from purchases.models import Purchase, PurchaseStatus
from purchases.packs import Pack, pack_for

logger = logging.getLogger(__name__)

# Once a purchase got this far, a late failure or cancel event must not move it back.
FINAL_STATUSES = frozenset(
    {PurchaseStatus.SUCCEEDED, PurchaseStatus.REFUNDED, PurchaseStatus.PARTIALLY_REFUNDED, PurchaseStatus.CANCELED}
)


def _stripe_status(status: str) -> PurchaseStatus:
    if status == "processing":
        return PurchaseStatus.PROCESSING
    if status == "canceled":
        return PurchaseStatus.CANCELED
    # Even a "succeeded" intent waits for its webhook: only the webhook credits.
    return PurchaseStatus.REQUIRES_PAYMENT


def _purchase_row(
    *, account: Account, pack: Pack, email: str, idempotency_key: str | None, actor: str
) -> tuple[Purchase, bool]:
    """The Purchase for this request: a new one, or the one an earlier try with the key made."""
    if idempotency_key is not None:
        existing = Purchase.objects.filter(account=account, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            purchase = Purchase.objects.create(
                account=account,
                amount_minor=pack.price_minor,
                currency=pack.currency,
                uses=pack.uses,
                credit_minor=pack.credit_minor,
                customer_email=email,
                idempotency_key=idempotency_key,
                actor=actor,
            )
    except IntegrityError:
        # A concurrent request with the same key inserted first.
        if idempotency_key is None:
            raise
        return Purchase.objects.get(account=account, idempotency_key=idempotency_key), False
    return purchase, True


def _check_room_for_credit(*, account: Account, pack: Pack) -> None:
    """Refuse a purchase whose credit could never be added (the balance column's limit).

    Counted with the credit of the account's other purchases still waiting for payment:
    once paid, ledger_post would refuse the credit and the webhook would fail forever.
    """
    pending = (
        Purchase.objects.filter(account=account, credited_at__isnull=True)
        .exclude(status__in=[PurchaseStatus.FAILED, PurchaseStatus.CANCELED])
        .aggregate(total=Sum("credit_minor"))["total"]
        or 0
    )
    if account.balance_minor + pending + pack.credit_minor > MAX_BALANCE_MINOR:
        raise InvalidOperation("This purchase would take the account past the largest balance it can hold.")


def _stripe_customer(*, account: Account, purchase: Purchase, email: str) -> str:
    """The account's Stripe Customer (created once, when an email is first given).

    Saved on the Purchase as soon as it exists, before the intent is created: a retry of
    this purchase (after a timeout) reuses it instead of asking Stripe again with the same
    idempotency key and, say, another email, which Stripe refuses.
    """
    if purchase.stripe_customer_id:
        if email and email != purchase.customer_email:
            stripe_api.customer_update_email(customer_id=purchase.stripe_customer_id, email=email)
        return purchase.stripe_customer_id
    previous = (
        Purchase.objects.filter(account=account)
        .exclude(stripe_customer_id="")
        .order_by("-created_at")
        .values("stripe_customer_id", "customer_email")
        .first()
    )
    if previous is not None:
        if email and email != previous["customer_email"]:
            stripe_api.customer_update_email(customer_id=previous["stripe_customer_id"], email=email)
        return previous["stripe_customer_id"]
    if not email:
        return ""
    customer_id = stripe_api.customer_create(
        email=email, account_id=str(account.pk), idempotency_key=f"ciris-customer-{purchase.pk}"
    )
    Purchase.objects.filter(pk=purchase.pk, stripe_customer_id="").update(
        stripe_customer_id=customer_id, updated_at=timezone.now()
    )
    return customer_id


def purchase_create(
    *, identity: Identity, actor: str, quantity: int = 1, idempotency_key: str | None = None
) -> tuple[Purchase, bool]:
    """Start buying `quantity` packs: a Purchase and its Stripe PaymentIntent.

    Returns (purchase, created). With an idempotency key, a retry returns the purchase the
    first request made (created False) instead of a second payment; the same key with
    another quantity is IdempotencyMismatch. Raises ServiceUnavailable (503) when Stripe is
    not configured, before anything is written, or when Stripe cannot be reached, and
    InvalidOperation (422, nothing written) when the credit would not fit the balance.
    """
    stripe_api.require_stripe()
    pack = pack_for(quantity=quantity)
    account, _ = account_get_or_create(identity=identity, actor=actor)
    if not account.is_active:
        raise AccountInactive(f"Account {account.status}", extra={"status": account.status})
    keyed = Purchase.objects.filter(account=account, idempotency_key=idempotency_key)
    if idempotency_key is None or not keyed.exists():  # a retry gets its purchase back
        _check_room_for_credit(account=account, pack=pack)

    purchase, created = _purchase_row(
        account=account, pack=pack, email=identity.email, idempotency_key=idempotency_key, actor=actor
    )
    if idempotency_key is not None and (purchase.uses, purchase.amount_minor) != (pack.uses, pack.price_minor):
        raise IdempotencyMismatch(
            "This idempotency key was already used for a purchase of another quantity.",
            extra={"purchase_id": str(purchase.pk)},
        )
    if purchase.stripe_payment_intent_id:
        return purchase, False

    # Network calls: no transaction is open here. Both keys derive from the Purchase id, so
    # a retry of this purchase (a crash after Stripe answered) gets the same objects back.
    customer_id = _stripe_customer(account=account, purchase=purchase, email=identity.email)
    intent = stripe_api.payment_intent_create(
        amount_minor=purchase.amount_minor,
        currency=purchase.currency,
        customer_id=customer_id,
        idempotency_key=f"ciris-purchase-{purchase.pk}",
        metadata={
            "purchase_id": str(purchase.pk),
            "account_id": str(account.pk),
            "uses": str(purchase.uses),
        },
    )
    stored = Purchase.objects.filter(pk=purchase.pk, stripe_payment_intent_id__isnull=True).update(
        stripe_payment_intent_id=intent["id"],
        client_secret=intent["client_secret"],
        stripe_customer_id=customer_id,
        status=_stripe_status(intent["status"]),
        updated_at=timezone.now(),
    )
    purchase.refresh_from_db()
    if not stored and purchase.stripe_payment_intent_id != intent["id"]:
        # Two tries of one purchase raced; Stripe returns one intent for one idempotency
        # key, so this only happens with a fake that ignores the key. The first one stored wins.
        logger.warning(
            "purchase already has another payment intent",
            extra={"purchase_id": str(purchase.pk), "ignored_intent": intent["id"]},
        )
    logger.info(
        "purchase created",
        extra={
            "purchase_id": str(purchase.pk),
            "account_id": str(account.pk),
            "payment_intent": purchase.stripe_payment_intent_id,
            "amount_minor": purchase.amount_minor,
            "uses": purchase.uses,
        },
    )
    metrics.observe_purchase(outcome="created")
    return purchase, created


def credit_entry(purchase: Purchase) -> LedgerEntry | None:
    return LedgerEntry.objects.filter(purchase=purchase, kind=EntryKind.PURCHASE).first()


def purchase_credit_from_intent(*, intent: dict[str, Any], event_id: str) -> LedgerEntry | None:
    """Add a succeeded PaymentIntent's credit to its account, exactly once.

    Returns the new ledger entry, or None when the purchase was already credited (a
    replayed or second event for the same intent) or the intent is not ours (ignored,
    logged). Raises PaymentEventRejected when the intent is ours but disagrees with its
    Purchase; nothing is credited then.
    """
    if ignored_if_not_ours(intent_id=intent.get("id"), obj=intent, event_id=event_id):
        return None
    purchase = payment_intent_purchase(intent=intent, event_id=event_id)
    if intent.get("status") != "succeeded":
        raise reject("intent in a succeeded event is not succeeded", event_id=event_id, status=intent.get("status"))
    with transaction.atomic():
        account, purchase = lock_account_and_purchase(purchase=purchase)
        if credit_entry(purchase) is not None:
            logger.info("purchase already credited", extra={"purchase_id": str(purchase.pk), "stripe_event": event_id})
            return None
        try:
            with transaction.atomic():
                entry = ledger_post(
                    account=account,
                    kind=EntryKind.PURCHASE,
                    balance_delta_minor=purchase.credit_minor,
                    purchase=purchase,
                    actor=f"stripe:{event_id}",
                    reason=f"Purchase of {purchase.uses} uses",
                    details={
                        "stripe_event": event_id,
                        "payment_intent": purchase.stripe_payment_intent_id,
                        "amount_minor": purchase.amount_minor,
                        "currency": purchase.currency,
                        "uses": purchase.uses,
                    },
                )
        except IntegrityError:
            # The unique constraint (one credit per purchase) is the last line of defence;
            # any other constraint failing means nothing was credited: fail, Stripe retries.
            if credit_entry(purchase) is None:
                raise
            logger.info("purchase already credited", extra={"purchase_id": str(purchase.pk), "stripe_event": event_id})
            return None
        purchase.status = PurchaseStatus.SUCCEEDED
        purchase.credited_at = timezone.now()
        purchase.save(update_fields=["status", "credited_at", "updated_at"])
    logger.info(
        "purchase credited",
        extra={
            "purchase_id": str(purchase.pk),
            "account_id": str(account.pk),
            "credit_minor": purchase.credit_minor,
            "balance_after": entry.balance_after_minor,
            "stripe_event": event_id,
        },
    )
    metrics.observe_purchase(outcome="succeeded")  # counted when dj-stripe's transaction commits
    return entry


def purchase_mark_failed(*, intent: dict[str, Any], event_id: str, status: PurchaseStatus) -> Purchase | None:
    """Record a failed or canceled payment. Credits nothing; never undoes a success.

    Returns None (and logs an error) when the intent is not ours.
    """
    if status not in (PurchaseStatus.FAILED, PurchaseStatus.CANCELED):
        raise ValueError(f"not a failure status: {status}")
    if ignored_if_not_ours(intent_id=intent.get("id"), obj=intent, event_id=event_id):
        return None
    purchase = payment_intent_purchase(intent=intent, event_id=event_id)
    with transaction.atomic():
        _, purchase = lock_account_and_purchase(purchase=purchase)
        if purchase.status in FINAL_STATUSES:
            logger.info(
                "late payment event ignored",
                extra={"purchase_id": str(purchase.pk), "status": purchase.status, "event_status": str(status)},
            )
            return purchase
        purchase.status = status
        purchase.save(update_fields=["status", "updated_at"])
    error = intent.get("last_payment_error")
    logger.info(
        "purchase payment %s",
        status,
        extra={
            "purchase_id": str(purchase.pk),
            "stripe_event": event_id,
            "failure": error.get("message", "") if isinstance(error, dict) else "",
        },
    )
    metrics.observe_purchase(outcome=str(status))
    return purchase

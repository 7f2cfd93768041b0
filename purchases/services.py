"""Buying credit packs through Stripe: create the payment, credit it once, take refunds back.

The money path:
1. `purchase_create` writes a Purchase (status "created") before calling Stripe, then
   creates the PaymentIntent with an idempotency key derived from the Purchase id, then
   stores the intent. No network call ever runs inside a transaction or a row lock.
2. Stripe confirms the card in the buyer's browser and sends `payment_intent.succeeded`;
   dj-stripe verifies and stores the delivery and calls `purchase_credit_from_intent`,
   which checks the event against the Purchase we created (never trusting the event's
   amount, currency or metadata on their own) and adds the credit in one transaction with
   the account row locked. The ledger's unique constraint makes a second credit for the
   same purchase impossible, whatever Stripe delivers and however often.
3. `charge.refunded` takes the refunded share of the credit back (`purchase_refund`),
   never below zero; what could not be taken back is recorded on the ledger entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
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
from purchases.models import Purchase, PurchaseStatus

logger = logging.getLogger(__name__)

MAX_QUANTITY = 50
# Once a purchase got this far, a late failure or cancel event must not move it back.
FINAL_STATUSES = frozenset(
    {PurchaseStatus.SUCCEEDED, PurchaseStatus.REFUNDED, PurchaseStatus.PARTIALLY_REFUNDED, PurchaseStatus.CANCELED}
)


class PaymentEventRejected(Exception):
    """A (verified) Stripe event about a purchase of ours that disagrees with it: nothing is credited.

    The webhook answers 400. Stripe signed it, so this is our data disagreeing with
    Stripe's (metadata naming our purchase with an unknown PaymentIntent, another account's
    purchase, a changed amount): an operator must look, hence logged as an error. Events
    about payments that are not ours at all are not refused (see `payment_is_ours`).
    """


class PaymentEventNotReady(Exception):
    """The event arrived before one it depends on (a refund before the credit): retry later."""


@dataclass(frozen=True)
class Pack:
    """What one purchase buys, fixed at purchase time from the BILLING_* settings."""

    quantity: int
    uses: int
    price_minor: int
    currency: str
    credit_minor: int


def pack_for(*, quantity: int = 1) -> Pack:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidOperation(f"quantity must be between 1 and {MAX_QUANTITY}.")
    uses = settings.BILLING_PACK_USES * quantity
    return Pack(
        quantity=quantity,
        uses=uses,
        price_minor=settings.BILLING_PACK_PRICE_MINOR * quantity,
        currency=settings.BILLING_CURRENCY,
        credit_minor=uses * settings.BILLING_USE_PRICE_MINOR,
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


# --- Stripe events -------------------------------------------------------------------


def _reject(reason: str, *, event_id: str, **context: Any) -> PaymentEventRejected:
    logger.error(
        "stripe event rejected: %s",
        reason,
        extra={"stripe_event": event_id, "reason": reason, **{k: str(v) for k, v in context.items()}},
    )
    return PaymentEventRejected(reason)


def _purchase_for_intent(*, intent_id: Any, event_id: str) -> Purchase:
    purchase = (
        Purchase.objects.filter(stripe_payment_intent_id=intent_id).first()
        if isinstance(intent_id, str) and intent_id
        else None
    )
    if purchase is None:
        raise _reject("unknown payment intent", event_id=event_id, payment_intent=intent_id)
    return purchase


def _check_metadata(purchase: Purchase, intent: dict[str, Any], *, event_id: str) -> None:
    metadata = intent.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if metadata.get("purchase_id") != str(purchase.pk) or metadata.get("account_id") != str(purchase.account_id):
        raise _reject(
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
        raise _reject(
            "amount or currency differs from the purchase",
            event_id=event_id,
            purchase_id=purchase.pk,
            expected=f"{purchase.amount_minor} {purchase.currency}",
            received=f"{amounts} {currency}",
        )


def payment_intent_purchase(*, intent: dict[str, Any], event_id: str) -> Purchase:
    """The Purchase this PaymentIntent pays for, checked against what we created."""
    purchase = _purchase_for_intent(intent_id=intent.get("id"), event_id=event_id)
    _check_metadata(purchase, intent, event_id=event_id)
    amounts = [intent.get("amount")]
    if "amount_received" in intent and intent.get("status") == "succeeded":
        amounts.append(intent["amount_received"])
    _check_money(purchase, amounts=amounts, currency=intent.get("currency"), event_id=event_id)
    return purchase


def charge_purchase(*, charge: dict[str, Any], event_id: str) -> Purchase:
    """The Purchase a Stripe Charge paid, checked against what we created."""
    purchase = _purchase_for_intent(intent_id=charge.get("payment_intent"), event_id=event_id)
    _check_money(purchase, amounts=[charge.get("amount")], currency=charge.get("currency"), event_id=event_id)
    metadata = charge.get("metadata")
    if isinstance(metadata, dict) and metadata.get("purchase_id") not in (None, str(purchase.pk)):
        raise _reject("charge names another purchase", event_id=event_id, purchase_id=purchase.pk)
    return purchase


def _credit_entry(purchase: Purchase) -> LedgerEntry | None:
    return LedgerEntry.objects.filter(purchase=purchase, kind=EntryKind.PURCHASE).first()


def purchase_credit_from_intent(*, intent: dict[str, Any], event_id: str) -> LedgerEntry | None:
    """Add a succeeded PaymentIntent's credit to its account, exactly once.

    Returns the new ledger entry, or None when the purchase was already credited (a
    replayed or second event for the same intent). Raises PaymentEventRejected when the
    intent is not one of ours or disagrees with its Purchase; nothing is credited then.
    """
    purchase = payment_intent_purchase(intent=intent, event_id=event_id)
    if intent.get("status") != "succeeded":
        raise _reject("intent in a succeeded event is not succeeded", event_id=event_id, status=intent.get("status"))
    with transaction.atomic():
        # Lock order everywhere: account, then purchase.
        account = Account.objects.select_for_update().get(pk=purchase.account_id)
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if _credit_entry(purchase) is not None:
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
            # The unique constraint (one credit per purchase) is the last line of defence.
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


def purchase_mark_failed(*, intent: dict[str, Any], event_id: str, status: PurchaseStatus) -> Purchase:
    """Record a failed or canceled payment. Credits nothing; never undoes a success."""
    if status not in (PurchaseStatus.FAILED, PurchaseStatus.CANCELED):
        raise ValueError(f"not a failure status: {status}")
    purchase = payment_intent_purchase(intent=intent, event_id=event_id)
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
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


def purchase_refund(*, charge: dict[str, Any], event_id: str) -> LedgerEntry | None:
    """Take back the credit of what Stripe refunded so far, never below zero.

    Stripe's charge carries the cumulative `amount_refunded`; the purchase remembers how
    much it already took back (`refunded_minor`, under the row lock), so replays, several
    partial refunds and out-of-order events each take back only the difference. The
    credit reversed is `credit_minor * amount_refunded // amount_minor` (floored); the part
    the balance cannot cover (already spent) is recorded as `shortfall_minor`.
    Returns the ledger entry, or None when there was nothing new to take back.
    """
    purchase = charge_purchase(charge=charge, event_id=event_id)
    refunded = charge.get("amount_refunded")
    if type(refunded) is not int or not 0 <= refunded <= purchase.amount_minor:
        raise _reject("bad amount_refunded", event_id=event_id, purchase_id=purchase.pk, amount_refunded=refunded)
    charge_id = str(charge.get("id") or "")
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=purchase.account_id)
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if _credit_entry(purchase) is None:
            # Stripe does not order deliveries; the credit will come, then the retry of this.
            raise PaymentEventNotReady(f"purchase {purchase.pk} is refunded but not credited yet")
        if refunded <= purchase.refunded_minor:
            logger.info(
                "refund already applied",
                extra={"purchase_id": str(purchase.pk), "stripe_event": event_id, "amount_refunded": refunded},
            )
            return None
        reversed_before = purchase.credit_minor * purchase.refunded_minor // purchase.amount_minor
        to_reverse = purchase.credit_minor * refunded // purchase.amount_minor - reversed_before
        debit = min(to_reverse, account.balance_minor)
        shortfall = to_reverse - debit
        entry = ledger_post(
            account=account,
            kind=EntryKind.REFUND,
            balance_delta_minor=-debit,
            purchase=purchase,
            actor=f"stripe:{event_id}",
            reason=f"Refund of {refunded - purchase.refunded_minor} {purchase.currency} minor units",
            idempotency_key=f"stripe-refund:{charge_id}:{refunded}",
            details={
                "stripe_event": event_id,
                "charge": charge_id,
                "payment_intent": purchase.stripe_payment_intent_id,
                "refunded_minor": refunded - purchase.refunded_minor,
                "amount_refunded_total": refunded,
                "credit_reversed_minor": to_reverse,
                "shortfall_minor": shortfall,
            },
        )
        purchase.refunded_minor = refunded
        purchase.status = (
            PurchaseStatus.REFUNDED if refunded >= purchase.amount_minor else PurchaseStatus.PARTIALLY_REFUNDED
        )
        purchase.save(update_fields=["refunded_minor", "status", "updated_at"])
    log = logger.warning if shortfall else logger.info
    log(
        "purchase refunded",
        extra={
            "purchase_id": str(purchase.pk),
            "account_id": str(account.pk),
            "debited_minor": debit,
            "shortfall_minor": shortfall,
            "stripe_event": event_id,
        },
    )
    metrics.observe_purchase(outcome=str(purchase.status))
    return entry

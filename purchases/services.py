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
   never below zero; what could not be taken back is recorded on the ledger entry. A
   refund that failed (amount_refunded went down) gives the difference back, and a
   chargeback (`charge.dispute.created`, `purchase_dispute`) is taken back like a refund.

Events for payments that are not ours (the Stripe account also takes other payments: no
`metadata.purchase_id` naming a purchase of ours, and a PaymentIntent id we never made)
are ignored with an error logged, and answered 200: refusing them would make Stripe retry
them for days and eventually disable the endpoint, stopping our own credits.
"""

from __future__ import annotations

import logging
import uuid
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


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
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


def _ignored_if_not_ours(*, intent_id: Any, obj: dict[str, Any], event_id: str) -> bool:
    """True (and an error logged) when the event is about a payment that is not ours."""
    if payment_is_ours(intent_id=intent_id, metadata=_metadata(obj)):
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
        raise _reject("unknown payment intent", event_id=event_id, payment_intent=intent_id)
    return purchase


def _check_metadata(purchase: Purchase, intent: dict[str, Any], *, event_id: str) -> None:
    metadata = _metadata(intent)
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
    """The Purchase this PaymentIntent (one of ours) pays for, checked against what we created."""
    purchase = _purchase_for_intent(intent_id=intent.get("id"), event_id=event_id)
    _check_metadata(purchase, intent, event_id=event_id)
    amounts = [intent.get("amount")]
    if "amount_received" in intent and intent.get("status") == "succeeded":
        amounts.append(intent["amount_received"])
    _check_money(purchase, amounts=amounts, currency=intent.get("currency"), event_id=event_id)
    return purchase


def charge_purchase(*, charge: dict[str, Any], event_id: str) -> Purchase:
    """The Purchase a Stripe Charge (one of ours) paid, checked against what we created."""
    purchase = _purchase_for_intent(intent_id=charge.get("payment_intent"), event_id=event_id)
    _check_money(purchase, amounts=[charge.get("amount")], currency=charge.get("currency"), event_id=event_id)
    if _metadata(charge).get("purchase_id") not in (None, str(purchase.pk)):
        raise _reject("charge names another purchase", event_id=event_id, purchase_id=purchase.pk)
    return purchase


def dispute_purchase(*, dispute: dict[str, Any], event_id: str) -> Purchase:
    """The Purchase a Stripe Dispute (chargeback, one of ours) is about, checked."""
    purchase = _purchase_for_intent(intent_id=dispute.get("payment_intent"), event_id=event_id)
    amount, currency = dispute.get("amount"), dispute.get("currency")
    currency_ok = isinstance(currency, str) and currency.upper() == purchase.currency.upper()
    if not currency_ok or type(amount) is not int or not 0 < amount <= purchase.amount_minor:
        raise _reject(
            "disputed amount or currency does not fit the purchase",
            event_id=event_id,
            purchase_id=purchase.pk,
            received=f"{amount} {currency}",
        )
    return purchase


def check_payment_event(*, event_type: str, obj: dict[str, Any], event_id: str) -> None:
    """Raise PaymentEventRejected for an event about a purchase of ours that disagrees with it.

    Read-only, run before dj-stripe syncs the object; an event that is not ours passes.
    """
    if event_type.startswith("payment_intent."):
        if payment_is_ours(intent_id=obj.get("id"), metadata=_metadata(obj)):
            payment_intent_purchase(intent=obj, event_id=event_id)
    elif event_type.startswith("charge.dispute."):
        if payment_is_ours(intent_id=obj.get("payment_intent"), metadata=_metadata(obj)):
            dispute_purchase(dispute=obj, event_id=event_id)
    elif event_type.startswith("charge."):
        if payment_is_ours(intent_id=obj.get("payment_intent"), metadata=_metadata(obj)):
            charge_purchase(charge=obj, event_id=event_id)


def _credit_entry(purchase: Purchase) -> LedgerEntry | None:
    return LedgerEntry.objects.filter(purchase=purchase, kind=EntryKind.PURCHASE).first()


def purchase_credit_from_intent(*, intent: dict[str, Any], event_id: str) -> LedgerEntry | None:
    """Add a succeeded PaymentIntent's credit to its account, exactly once.

    Returns the new ledger entry, or None when the purchase was already credited (a
    replayed or second event for the same intent) or the intent is not ours (ignored,
    logged). Raises PaymentEventRejected when the intent is ours but disagrees with its
    Purchase; nothing is credited then.
    """
    if _ignored_if_not_ours(intent_id=intent.get("id"), obj=intent, event_id=event_id):
        return None
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
            # The unique constraint (one credit per purchase) is the last line of defence;
            # any other constraint failing means nothing was credited: fail, Stripe retries.
            if _credit_entry(purchase) is None:
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
    if _ignored_if_not_ours(intent_id=intent.get("id"), obj=intent, event_id=event_id):
        return None
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


def credit_taken_back(purchase: Purchase, *, taken_minor: int | None = None) -> int:
    """Credit units reversed for what was refunded and disputed (floored, at most the credit)."""
    if taken_minor is None:
        taken_minor = purchase.refunded_minor + purchase.disputed_minor
    return purchase.credit_minor * min(taken_minor, purchase.amount_minor) // purchase.amount_minor


def _taken_back_status(purchase: Purchase) -> PurchaseStatus:
    taken = purchase.refunded_minor + purchase.disputed_minor
    if taken >= purchase.amount_minor:
        return PurchaseStatus.REFUNDED
    return PurchaseStatus.PARTIALLY_REFUNDED if taken > 0 else PurchaseStatus.SUCCEEDED


def _move_taken_back(
    *,
    account: Account,
    purchase: Purchase,
    refunded: int,
    disputed: int,
    event_id: str,
    idempotency_key: str,
    reason: str,
    details: dict[str, Any],
) -> tuple[LedgerEntry, int]:
    """Post the ledger entry that moves the purchase from its recorded refunded/disputed
    amounts to new ones, and record them; account and purchase are locked by the caller.

    More taken back: the credit share is debited, never below zero; the rest is the
    shortfall. Less (a refund failed, a dispute was won): the share is given back, but never
    more than the entries of that source (refunds, or the dispute, told by the idempotency
    key's prefix) actually debited: a shortfall was never taken, so is not returned.
    Returns (entry, shortfall).
    """
    before = credit_taken_back(purchase)
    after = credit_taken_back(purchase, taken_minor=refunded + disputed)
    change = after - before
    shortfall = 0
    if change >= 0:
        delta = -min(change, account.balance_minor)
        shortfall = change + delta
    else:
        # Only what this kind of event took (refunds, or the dispute) is given back by it:
        # a failed refund never returns a chargeback's debit, nor a won dispute a refund's.
        source = idempotency_key.split(":", 1)[0].removesuffix("-won")
        debited = -(
            LedgerEntry.objects.filter(
                purchase=purchase, kind=EntryKind.REFUND, idempotency_key__startswith=f"{source}"
            ).aggregate(total=Sum("balance_delta_minor"))["total"]
            or 0
        )
        delta = min(-change, max(debited, 0))
    entry = ledger_post(
        account=account,
        kind=EntryKind.REFUND,
        balance_delta_minor=delta,
        purchase=purchase,
        actor=f"stripe:{event_id}",
        reason=reason,
        idempotency_key=idempotency_key,
        details={
            "stripe_event": event_id,
            "payment_intent": purchase.stripe_payment_intent_id,
            **details,
            "credit_reversed_minor": change,
            "shortfall_minor": shortfall,
        },
    )
    purchase.refunded_minor = refunded
    purchase.disputed_minor = disputed
    purchase.status = _taken_back_status(purchase)
    return entry, shortfall


def _log_taken_back(what: str, *, purchase: Purchase, entry: LedgerEntry, shortfall: int, event_id: str) -> None:
    log = logger.warning if shortfall else logger.info
    log(
        what,
        extra={
            "purchase_id": str(purchase.pk),
            "account_id": str(purchase.account_id),
            "balance_delta_minor": entry.balance_delta_minor,
            "shortfall_minor": shortfall,
            "stripe_event": event_id,
        },
    )
    metrics.observe_purchase(outcome=str(purchase.status))


def purchase_refund(*, charge: dict[str, Any], event_id: str, event_created: int = 0) -> LedgerEntry | None:
    """Bring the credit in line with what Stripe refunded so far, never below zero.

    Stripe's charge carries the cumulative `amount_refunded`; the purchase remembers the
    amount it last applied (`refunded_minor`, under the row lock), so replays and several
    partial refunds each move only the difference. The credit reversed is
    `credit_minor * amount_refunded // amount_minor` (floored); the part the balance cannot
    cover (already spent) is recorded as `shortfall_minor`.

    `amount_refunded` going down means a refund failed: the difference is given back. As
    Stripe does not order deliveries, a charge state older (by the event's `created`) than
    the newest one applied is ignored, and within the same second only increases apply.
    Returns the ledger entry, or None when there was nothing to change (or not ours).
    """
    if _ignored_if_not_ours(intent_id=charge.get("payment_intent"), obj=charge, event_id=event_id):
        return None
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
        stale = event_created < purchase.refund_event_created or (
            event_created == purchase.refund_event_created and refunded < purchase.refunded_minor
        )
        if refunded == purchase.refunded_minor or stale:
            logger.info(
                "refund already applied" if not stale else "older refund state ignored",
                extra={"purchase_id": str(purchase.pk), "stripe_event": event_id, "amount_refunded": refunded},
            )
            return None
        previous = purchase.refunded_minor
        entry, shortfall = _move_taken_back(
            account=account,
            purchase=purchase,
            refunded=refunded,
            disputed=purchase.disputed_minor,
            event_id=event_id,
            idempotency_key=f"stripe-refund:{event_id}",
            reason=(
                f"Refund of {refunded - previous} {purchase.currency} minor units"
                if refunded > previous
                else f"Failed refund: {previous - refunded} {purchase.currency} minor units returned"
            ),
            details={
                "charge": charge_id,
                "refunded_minor": refunded - previous,
                "amount_refunded_total": refunded,
            },
        )
        purchase.refund_event_created = max(event_created, purchase.refund_event_created)
        purchase.save(
            update_fields=["refunded_minor", "disputed_minor", "status", "refund_event_created", "updated_at"]
        )
    what = "purchase refunded" if refunded > previous else "purchase refund failed, credit returned"
    _log_taken_back(what, purchase=purchase, entry=entry, shortfall=shortfall, event_id=event_id)
    return entry


def purchase_dispute(*, dispute: dict[str, Any], event_id: str) -> LedgerEntry | None:
    """A chargeback (`charge.dispute.created`): take the disputed share back like a refund.

    The disputed funds are withdrawn from us when the dispute opens, so the credit goes
    back then, never below zero (shortfall recorded). Stripe allows one dispute per charge:
    a second event for it changes nothing. A dispute we win gives the credit back
    (`purchase_dispute_reinstated`).
    Returns the ledger entry, or None when there was nothing to change (or not ours).
    """
    if _ignored_if_not_ours(intent_id=dispute.get("payment_intent"), obj=dispute, event_id=event_id):
        return None
    purchase = dispute_purchase(dispute=dispute, event_id=event_id)
    amount: int = dispute["amount"]
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=purchase.account_id)
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if _credit_entry(purchase) is None:
            raise PaymentEventNotReady(f"purchase {purchase.pk} is disputed but not credited yet")
        if purchase.disputed_minor:
            logger.info("dispute already applied", extra={"purchase_id": str(purchase.pk), "stripe_event": event_id})
            return None
        entry, shortfall = _move_taken_back(
            account=account,
            purchase=purchase,
            refunded=purchase.refunded_minor,
            disputed=amount,
            event_id=event_id,
            idempotency_key=f"stripe-dispute:{dispute.get('id') or event_id}",
            reason=f"Chargeback of {amount} {purchase.currency} minor units",
            details={"dispute": str(dispute.get("id") or ""), "disputed_minor": amount},
        )
        purchase.save(update_fields=["refunded_minor", "disputed_minor", "status", "updated_at"])
    _log_taken_back("purchase disputed", purchase=purchase, entry=entry, shortfall=shortfall, event_id=event_id)
    return entry


def purchase_dispute_reinstated(*, dispute: dict[str, Any], event_id: str) -> LedgerEntry | None:
    """A chargeback we won (`charge.dispute.funds_reinstated`): the disputed funds are ours
    again, so the credit the dispute took back is given back, once, and never more than
    the dispute actually debited (a shortfall was never taken, so is not returned).
    Returns the ledger entry, or None when there was nothing to give back (or not ours).
    """
    if _ignored_if_not_ours(intent_id=dispute.get("payment_intent"), obj=dispute, event_id=event_id):
        return None
    purchase = dispute_purchase(dispute=dispute, event_id=event_id)
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=purchase.account_id)
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if not purchase.disputed_minor:
            logger.info("no dispute to reinstate", extra={"purchase_id": str(purchase.pk), "stripe_event": event_id})
            return None
        entry, shortfall = _move_taken_back(
            account=account,
            purchase=purchase,
            refunded=purchase.refunded_minor,
            disputed=0,
            event_id=event_id,
            idempotency_key=f"stripe-dispute-won:{dispute.get('id') or event_id}",
            reason="Chargeback won: the credit is given back",
            details={"dispute": str(dispute.get("id") or ""), "reinstated_minor": purchase.disputed_minor},
        )
        purchase.save(update_fields=["refunded_minor", "disputed_minor", "status", "updated_at"])
    _log_taken_back("purchase dispute won", purchase=purchase, entry=entry, shortfall=shortfall, event_id=event_id)
    return entry

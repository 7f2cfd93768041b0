"""Store purchases: verify with the store, credit once, consume after, take back when voided.

The money path of a Google Play purchase:
1. Ask Play about the token (no transaction open): purchased, pending, cancelled, unknown.
2. In one transaction with the account row locked: INSERT the StorePurchase row, then the
   ledger credit. The row's unique (store, purchase token) is hit inside that transaction,
   so of any number of parallel verifications one inserts and credits; the others wait for
   its commit, fail the INSERT and answer as a replay (or 409 for another account).
3. After the commit, consume the purchase at Play. A failure is recorded on the row and
   retried by the next replay of the token and by `manage.py google_play_consume`.

A voided purchase (an RTDN notification, or the `google_play_voided` poll) is taken back
through ledger.reversals, the rule Stripe chargebacks follow: capped by what is left, the
shortfall recorded on the row and flagged. A token voided before anyone verified it is
written as a voided row with no account, so it can never be credited afterwards: whatever
the order of verify, replay, notification and poll, the balance ends the same.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.identity import Identity
from accounts.models import Account
from accounts.services import lock_account, uses_to_minor
from billing_site.errors import AccountInactive, BillingError, InvalidOperation, ServiceUnavailable
from ledger.models import EntryKind
from ledger.reversals import reversal_flag_shortfall, reversal_take
from ledger.services import MAX_BALANCE_MINOR, ledger_post
from stores import app_store, google_play, metrics
from stores.errors import (
    PurchaseCancelled,
    PurchaseInvalid,
    PurchaseNotFound,
    PurchaseOfAnotherAccount,
    PurchasePending,
    PurchaseVoided,
    UnknownPackage,
    UnknownStoreProduct,
)
from stores.models import ConsumeState, Grants, PurchaseState, Store, StoreNotification, StoreProduct, StorePurchase
from tools.services import tool_purchased_uses_add, tool_purchased_uses_take_back

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verified:
    """The answer to a verification: the purchase row and whether this call credited it."""

    purchase: StorePurchase
    already_processed: bool
    account: Account


def store_product_for(*, store: Store, product_id: str, grants: Grants, tool_name: str | None = None) -> StoreProduct:
    product = (
        StoreProduct.objects.select_related("tool")
        .filter(store=store, product_id=product_id, grants=grants, active=True)
        .first()
    )
    if product is None or (tool_name is not None and (product.tool is None or product.tool.product_type != tool_name)):
        raise UnknownStoreProduct(product_id)
    return product


def _existing(*, store: Store, token: str) -> StorePurchase | None:
    return StorePurchase.objects.select_related("account", "product").filter(store=store, purchase_token=token).first()


def _answer_existing(row: StorePurchase, *, identity: Identity) -> Verified:
    """A token we already hold: voided (400), another account's (409), or this account's replay."""
    if row.state == PurchaseState.VOIDED:
        raise PurchaseVoided()
    account = row.account
    assert account is not None  # a credited row has its account (a database CHECK)
    if (account.tenant_id, account.oauth_provider, account.external_id) != (
        identity.tenant_id,
        identity.oauth_provider,
        identity.external_id,
    ):
        raise PurchaseOfAnotherAccount()
    return Verified(purchase=row, already_processed=True, account=account)


def google_play_verify(
    *,
    identity: Identity,
    package_name: str,
    product_id: str,
    purchase_token: str,
    actor: str,
    grants: Grants = Grants.CREDIT,
    tool_name: str | None = None,
) -> Verified:
    """Verify a Play purchase with Play and credit its product once; consume it after.

    Raises UnknownPackage / UnknownStoreProduct (422), PurchasePending, PurchaseCancelled,
    PurchaseNotFound, PurchaseVoided (400), PurchaseOfAnotherAccount (409), AccountInactive
    (403, closed accounts) and PlayUnavailable (503). Counted by result once it ends.
    """
    try:
        verified = _verify(
            identity=identity,
            package_name=package_name,
            product_id=product_id,
            purchase_token=purchase_token,
            actor=actor,
            grants=grants,
            tool_name=tool_name,
        )
    except BillingError as refused:
        metrics.observe_verification(store=Store.GOOGLE_PLAY, result=metrics.result_of(refused))
        raise
    metrics.observe_verification(
        store=Store.GOOGLE_PLAY, result="already_processed" if verified.already_processed else "credited"
    )
    if verified.purchase.consume_state in (ConsumeState.PENDING, ConsumeState.FAILED):
        google_play_consume(purchase=verified.purchase)
    return verified


def _verify(
    *,
    identity: Identity,
    package_name: str,
    product_id: str,
    purchase_token: str,
    actor: str,
    grants: Grants,
    tool_name: str | None,
) -> Verified:
    if package_name not in settings.GOOGLE_PLAY_PACKAGE_NAMES:
        raise UnknownPackage(package_name)
    product = store_product_for(store=Store.GOOGLE_PLAY, product_id=product_id, grants=grants, tool_name=tool_name)
    existing = _existing(store=Store.GOOGLE_PLAY, token=purchase_token)
    if existing is not None:
        return _answer_existing(existing, identity=identity)
    if not google_play.configured():
        raise google_play.PlayUnavailable("Google Play is not configured on this server.")
    try:
        play = google_play.product_purchase(package_name=package_name, product_id=product_id, token=purchase_token)
    except google_play.PlayNotFound:
        raise PurchaseNotFound() from None
    if play.purchase_state == google_play.PENDING:
        raise PurchasePending()
    if play.purchase_state != google_play.PURCHASED:
        raise PurchaseCancelled()
    if play.product_id != product_id:
        raise UnknownStoreProduct(product_id)
    return _credit(
        identity=identity,
        product=product,
        package_name=package_name,
        purchase_token=purchase_token,
        order_id=play.order_id,
        quantity=play.quantity,
        actor=actor,
    )


def _credit(
    *,
    identity: Identity,
    product: StoreProduct,
    package_name: str,
    purchase_token: str,
    order_id: str,
    quantity: int,
    actor: str,
) -> Verified:
    """The one transaction: account locked, purchase row inserted, product credited."""
    uses = product.uses * quantity
    try:
        with transaction.atomic():
            account = lock_account(identity=identity, actor=actor)
            if not account.takes_new_credit:
                raise AccountInactive(f"Account {account.status}", extra={"status": account.status})
            row = StorePurchase.objects.create(
                store=Store.GOOGLE_PLAY,
                purchase_token=purchase_token,
                package_name=package_name,
                order_id=order_id,
                account=account,
                product=product,
                state=PurchaseState.CREDITED,
                uses_credited=uses,
                actor=actor,
            )
            _post_credit(account=account, row=row, product=product, actor=actor)
    except IntegrityError:
        # Another verification of this token committed first (the unique constraint's word).
        existing = _existing(store=Store.GOOGLE_PLAY, token=purchase_token)
        if existing is None:
            raise
        return _answer_existing(existing, identity=identity)
    account.refresh_from_db()
    logger.info(
        "store purchase credited",
        extra={
            "store": Store.GOOGLE_PLAY.value,
            "store_purchase_id": str(row.pk),
            "account_id": str(account.pk),
            "order_id": order_id,
            "product_id": product.product_id,
            "uses": uses,
        },
    )
    return Verified(purchase=row, already_processed=False, account=account)


def _post_credit(*, account: Account, row: StorePurchase, product: StoreProduct, actor: str) -> None:
    """Credit a purchase row's uses (the account and the row locked by the caller), once."""
    uses = row.uses_credited
    label = Store(row.store).label
    details: dict[str, object] = {
        "store": row.store,
        "store_purchase_id": str(row.pk),
        "order_id": row.order_id,
        "product_id": product.product_id,
    }
    if product.grants == Grants.TOOL:
        assert product.tool is not None
        entry, _ = tool_purchased_uses_add(
            account=account,
            product=product.tool,
            uses=uses,
            actor=actor,
            reason=f"{label} {product.product_id}: {uses} {product.tool.product_type} uses",
            details=details,
        )
    else:
        credit = uses_to_minor(uses)
        if account.balance_minor + credit > MAX_BALANCE_MINOR:
            raise InvalidOperation("This purchase would take the account past the largest balance it can hold.")
        entry = ledger_post(
            account=account,
            kind=EntryKind.PURCHASE,
            balance_delta_minor=credit,
            actor=actor,
            reason=f"{label} purchase of {uses} uses ({product.product_id})",
            details=details,
        )
        row.credit_minor = credit
    row.state = PurchaseState.CREDITED
    row.credit_entry = entry
    row.save(update_fields=["state", "credit_minor", "credit_entry", "updated_at"])


def google_play_consume(*, purchase: StorePurchase) -> bool:
    """Consume a credited purchase at Play (outside any transaction); True once consumed.

    Google refunds purchases left unacknowledged for three days, so a failure is recorded
    (and retried later), never raised to the buyer who was already credited.
    """
    if purchase.state != PurchaseState.CREDITED or purchase.product is None:
        return False
    error = ""
    try:
        google_play.consume(
            package_name=purchase.package_name, product_id=purchase.product.product_id, token=purchase.purchase_token
        )
        consumed = True
    except (google_play.PlayNotFound, google_play.PlayUnavailable) as failure:
        error = str(failure) or type(failure).__name__
        consumed = _consumed_at_play(purchase)
    now = timezone.now()
    StorePurchase.objects.filter(pk=purchase.pk).exclude(consume_state=ConsumeState.CONSUMED).update(
        consume_state=ConsumeState.CONSUMED if consumed else ConsumeState.FAILED,
        consume_attempts=purchase.consume_attempts + 1,
        consume_error="" if consumed else error[:1000],
        consumed_at=now if consumed else None,
        updated_at=now,
    )
    purchase.refresh_from_db()
    if not consumed:
        logger.warning(
            "store purchase consume failed; will retry",
            extra={"store_purchase_id": str(purchase.pk), "error": error, "attempts": purchase.consume_attempts},
        )
    metrics.observe_consume(store=Store.GOOGLE_PLAY, result="consumed" if consumed else "failed")
    return consumed


def _consumed_at_play(purchase: StorePurchase) -> bool:
    """After a refused consume: was it consumed already (a retry of one that got through)?"""
    assert purchase.product is not None
    try:
        play = google_play.product_purchase(
            package_name=purchase.package_name, product_id=purchase.product.product_id, token=purchase.purchase_token
        )
    except (google_play.PlayNotFound, google_play.PlayUnavailable):
        return False
    return play.consumption_state == google_play.CONSUMED


def google_play_void(*, purchase_token: str, order_id: str = "", source: str) -> tuple[StorePurchase, str]:
    """Take back a voided purchase once, whenever and however often the news arrives.

    `source` says who told us ("rtdn:<message id>", "poll"). Never credited yet: the token
    is recorded voided, and no later verification credits it. Credited: the reversal takes
    the credit (or the tool uses) back, capped by what is left, the shortfall recorded and
    flagged. Already voided: nothing changes. Returns the row and what happened
    ("before_credit", "reversed" or "duplicate").
    """
    try:
        with transaction.atomic():
            row = StorePurchase.objects.create(
                store=Store.GOOGLE_PLAY,
                purchase_token=purchase_token,
                order_id=order_id,
                state=PurchaseState.VOIDED,
                consume_state=ConsumeState.NOT_NEEDED,
                voided_at=timezone.now(),
                void_source=source[:255],
                actor=source[:255],
            )
        logger.info("store purchase voided before it was verified", extra={"store_purchase_id": str(row.pk)})
        metrics.observe_void(store=Store.GOOGLE_PLAY, result="before_credit")
        return row, "before_credit"
    except IntegrityError:
        pass  # the token is ours already (credited, or voided before): take it back below
    existing = StorePurchase.objects.get(store=Store.GOOGLE_PLAY, purchase_token=purchase_token)
    with transaction.atomic():
        account = (
            Account.objects.select_for_update().get(pk=existing.account_id) if existing.account_id is not None else None
        )
        row = StorePurchase.objects.select_for_update(of=("self",)).select_related("product__tool").get(pk=existing.pk)
        if row.state == PurchaseState.VOIDED or account is None:
            result = "duplicate"
        else:
            _take_back(account=account, row=row, source=source)
            result = "reversed"
    metrics.observe_void(store=Store.GOOGLE_PLAY, result=result)
    return row, result


def _reversal_context(row: StorePurchase, source: str) -> tuple[StoreProduct, str, str, dict[str, object]]:
    """What a reversal of `row` (or its undoing) records: the product, the store's name, the
    actor and the ledger entry's details."""
    product = row.product
    assert product is not None
    details: dict[str, object] = {
        "store": row.store,
        "store_purchase_id": str(row.pk),
        "order_id": row.order_id,
        "product_id": product.product_id,
        "void_source": source,
    }
    return product, Store(row.store).label, f"{row.store}:{source}"[:255], details


def _take_back(*, account: Account, row: StorePurchase, source: str) -> None:
    """Reverse a credited purchase (account and row locked by the caller)."""
    product, label, actor, details = _reversal_context(row, source)
    if product.grants == Grants.TOOL:
        assert product.tool is not None
        entry, taken_uses = tool_purchased_uses_take_back(
            account=account,
            product=product.tool,
            uses=row.uses_credited,
            actor=actor,
            reason=f"{label} refund of {product.product_id}",
            details=details,
        )
        row.reversed_uses, row.shortfall_uses = taken_uses, row.uses_credited - taken_uses
        shortfall_minor = 0
    else:
        take = reversal_take(wanted=row.credit_minor, available=account.balance_minor)
        entry = ledger_post(
            account=account,
            kind=EntryKind.REFUND,
            balance_delta_minor=-take.taken,
            actor=actor,
            reason=f"{label} refund of {product.product_id}: {row.credit_minor} credit minor units",
            details={**details, "credit_reversed_minor": row.credit_minor, "shortfall_minor": take.shortfall},
        )
        row.reversed_minor, row.shortfall_minor = take.taken, take.shortfall
        shortfall_minor = take.shortfall
    row.state = PurchaseState.VOIDED
    row.voided_at = timezone.now()
    row.void_source = source[:255]
    row.reversal_entry = entry
    row.save(
        update_fields=[
            "state",
            "voided_at",
            "void_source",
            "reversal_entry",
            "reversed_minor",
            "shortfall_minor",
            "reversed_uses",
            "shortfall_uses",
            "updated_at",
        ]
    )
    if shortfall_minor or row.shortfall_uses:
        reversal_flag_shortfall(
            account=account,
            shortfall_minor=shortfall_minor,
            what=f"{label} refund",
            subject=f"store purchase {row.pk}, order {row.order_id or '?'}",
            actor=actor,
            log_fields={"store_purchase_id": str(row.pk), "shortfall_uses": row.shortfall_uses},
        )


# --- The App Store ---------------------------------------------------------------------------
# Apple can take a refund back (REFUND_REVERSED), so an App Store purchase does not end at its
# first refund as a Play token does. Each piece of news about a transaction (the lookup at a
# verify, each notification) is signed by Apple with its signedDate and says whether the
# transaction is revoked; a row applies news only when it is newer than the news it holds, and
# is then brought to the one state that news implies: credited iff an account verified it and
# the latest news says not revoked. Whatever order the news arrives in, the newest wins, so
# the balance ends the same.


def app_store_verify(*, identity: Identity, transaction_id: str, actor: str) -> Verified:
    """Look a StoreKit transaction up at Apple and credit its product once per transactionId.

    Raises PurchaseNotFound, PurchaseInvalid, PurchaseVoided (400), PurchaseOfAnotherAccount
    (409), UnknownStoreProduct (422), AccountInactive (403) and AppStoreUnavailable (503).
    """
    try:
        verified = _app_store_verify(identity=identity, transaction_id=transaction_id, actor=actor)
    except BillingError as refused:
        metrics.observe_verification(store=Store.APP_STORE, result=metrics.result_of(refused))
        raise
    metrics.observe_verification(
        store=Store.APP_STORE, result="already_processed" if verified.already_processed else "credited"
    )
    return verified


def _app_store_verify(*, identity: Identity, transaction_id: str, actor: str) -> Verified:
    try:
        news = app_store.transaction(transaction_id)
    except app_store.AppStoreNotFound:
        raise PurchaseNotFound() from None
    except app_store.AppStoreSignatureInvalid as refused:
        logger.warning("app store transaction refused", extra={"transaction_id": transaction_id, "error": str(refused)})
        raise PurchaseInvalid() from None
    product = store_product_for(store=Store.APP_STORE, product_id=news.product_id, grants=Grants.CREDIT)
    with transaction.atomic():
        account = lock_account(identity=identity, actor=actor)
        row = _locked_app_store_row(news, product=product, account=account, actor=actor)
        if row.account_id is not None and row.account_id != account.pk:
            raise PurchaseOfAnotherAccount()
        already_processed = row.state == PurchaseState.CREDITED
        if row.account_id is None or row.credit_entry_id is None:
            if not account.takes_new_credit:
                raise AccountInactive(f"Account {account.status}", extra={"status": account.status})
            row.account, row.product = account, product
            row.uses_credited = product.uses * news.quantity
            row.save(update_fields=["account", "product", "uses_credited", "updated_at"])
        _apply_news(row, news)
        outcome = _converge(row=row, account=account, source="lookup", actor=actor)
    if outcome == "reversed":
        metrics.observe_void(store=Store.APP_STORE, result="reversed")
    if row.state != PurchaseState.CREDITED:
        raise PurchaseVoided()
    account.refresh_from_db()
    if outcome == "credited":
        logger.info(
            "store purchase credited",
            extra={
                "store": Store.APP_STORE.value,
                "store_purchase_id": str(row.pk),
                "account_id": str(account.pk),
                "order_id": row.order_id,
                "product_id": product.product_id,
                "uses": row.uses_credited,
            },
        )
    return Verified(purchase=row, already_processed=already_processed, account=account)


def _locked_app_store_row(
    news: app_store.AppStoreTransaction, *, product: StoreProduct | None, account: Account | None, actor: str
) -> StorePurchase:
    """The transaction's row, locked; inserted (not credited yet) if it is new."""
    rows = StorePurchase.objects.select_for_update(of=("self",)).select_related("product__tool")
    row = rows.filter(store=Store.APP_STORE, purchase_token=news.transaction_id).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return StorePurchase.objects.create(
                store=Store.APP_STORE,
                purchase_token=news.transaction_id,
                order_id=news.original_transaction_id,
                package_name=settings.APPLE_STOREKIT_BUNDLE_ID,
                account=account,
                product=product,
                state=PurchaseState.VOIDED,  # not credited (yet): _converge decides
                uses_credited=product.uses * news.quantity if product is not None else 0,
                consume_state=ConsumeState.NOT_NEEDED,  # the app finishes StoreKit transactions
                actor=actor[:255],
            )
    except IntegrityError:
        # A parallel verify or notification inserted it first and has committed by now.
        return rows.get(store=Store.APP_STORE, purchase_token=news.transaction_id)


def _apply_news(row: StorePurchase, news: app_store.AppStoreTransaction) -> bool:
    """Take Apple's news if it is newer than what the row holds (the row locked by the caller)."""
    if row.news_signed_at is not None and news.signed_at <= row.news_signed_at:
        return False
    row.store_revoked, row.news_signed_at = news.revoked, news.signed_at
    row.save(update_fields=["store_revoked", "news_signed_at", "updated_at"])
    return True


def _converge(*, row: StorePurchase, account: Account | None, source: str, actor: str) -> str:
    """Bring the row to the state its news implies (account and row locked by the caller).

    `source` names the news ("lookup", "notification:<uuid>"), `actor` who brought it.
    Returns what moved: "credited", "reversed", "given_back" or "unchanged".
    """
    creditable = account is not None and row.product is not None and not row.store_revoked
    if creditable and row.state != PurchaseState.CREDITED:
        assert account is not None and row.product is not None
        if row.credit_entry_id is None:
            _post_credit(account=account, row=row, product=row.product, actor=actor)
            return "credited"
        _give_back(account=account, row=row, source=source)
        return "given_back"
    if not creditable and row.state == PurchaseState.CREDITED and account is not None:
        _take_back(account=account, row=row, source=source)
        return "reversed"
    return "unchanged"


def _give_back(*, account: Account, row: StorePurchase, source: str) -> None:
    """Undo a reversal the store took back (Apple's REFUND_REVERSED): what was taken returns;
    the shortfall, never taken, is simply forgotten. Account and row locked by the caller."""
    product, label, actor, details = _reversal_context(row, source)
    if product.grants == Grants.TOOL:
        assert product.tool is not None
        entry, _ = tool_purchased_uses_add(
            account=account,
            product=product.tool,
            uses=row.reversed_uses,
            actor=actor,
            reason=f"{label} refund of {product.product_id} reversed",
            details=details,
        )
    else:
        entry = ledger_post(
            account=account,
            kind=EntryKind.REFUND_REVERSAL,
            balance_delta_minor=row.reversed_minor,
            actor=actor,
            reason=(
                f"{label} refund of {product.product_id} reversed: {row.reversed_minor} credit given back "
                f"({row.shortfall_minor} of its shortfall was never taken)"
            ),
            details={
                **details,
                "credit_reversed_minor": -row.credit_minor,
                "shortfall_released_minor": row.shortfall_minor,
            },
        )
    row.state = PurchaseState.CREDITED
    row.reversed_minor = row.shortfall_minor = row.reversed_uses = row.shortfall_uses = 0
    row.reversal_entry = None
    row.save(
        update_fields=[
            "state",
            "reversed_minor",
            "shortfall_minor",
            "reversed_uses",
            "shortfall_uses",
            "reversal_entry",
            "updated_at",
        ]
    )
    logger.info(
        "store refund reversed: credit given back",
        extra={"store_purchase_id": str(row.pk), "account_id": str(account.pk), "ledger_entry_id": entry.pk},
    )


class _RowChangedHands(Exception):
    """A verify gave the row its account between our read and our lock: lock again."""


# Notification types that carry news of a refund (the transaction inside says which way).
APP_STORE_REFUND_NEWS = frozenset({"REFUND", "REVOKE", "REFUND_REVERSED"})
APP_STORE_REVOKING = frozenset({"REFUND", "REVOKE"})


def app_store_notification_apply(*, notification: app_store.AppStoreNotification) -> str:
    """Handle one verified App Store Server Notification once (by notificationUUID).

    Returns what became of it: "reversed", "given_back", "credited", "before_credit" (news kept
    for a transaction nobody verified yet), "unchanged", "stale" (older than the news the row
    holds), "ignored" (a type we do not act on) or "duplicate".
    """
    message_id = notification.notification_uuid
    if StoreNotification.objects.filter(store=Store.APP_STORE, message_id=message_id).exists():
        outcome = "duplicate"
    else:
        try:
            outcome = _app_store_notification(notification)
        except IntegrityError:
            if not StoreNotification.objects.filter(store=Store.APP_STORE, message_id=message_id).exists():
                raise
            outcome = "duplicate"  # a parallel delivery of the same notification recorded it first
    metrics.observe_notification(store=Store.APP_STORE, outcome=outcome)
    if outcome == "reversed":
        metrics.observe_void(store=Store.APP_STORE, result="reversed")
    logger.info(
        "app store notification",
        extra={"notification_uuid": message_id, "notification": notification.notification_type, "outcome": outcome},
    )
    return outcome


def _app_store_notification(notification: app_store.AppStoreNotification) -> str:
    news = notification.transaction
    source = f"notification:{notification.notification_uuid}"
    for _ in range(3):
        try:
            with transaction.atomic():
                note = StoreNotification.objects.create(
                    store=Store.APP_STORE,
                    message_id=notification.notification_uuid,
                    kind=notification.notification_type[:64],
                    purchase_token=news.transaction_id if news is not None else "",
                )
                if news is None or notification.notification_type not in APP_STORE_REFUND_NEWS:
                    outcome = "ignored"
                else:
                    if notification.notification_type in APP_STORE_REVOKING:
                        news = dataclasses.replace(news, revoked=True)  # whatever the transaction says
                    outcome = _apply_notification_news(news, source=source)
                note.outcome = outcome
                note.save(update_fields=["outcome"])
                return outcome
        except _RowChangedHands:
            continue
    raise ServiceUnavailable("The purchase is being verified right now; deliver the notification again.")


def _apply_notification_news(news: app_store.AppStoreTransaction, *, source: str) -> str:
    seen = (
        StorePurchase.objects.filter(store=Store.APP_STORE, purchase_token=news.transaction_id)
        .values_list("account_id", flat=True)
        .first()
    )
    account = Account.objects.select_for_update().get(pk=seen) if seen is not None else None
    product = StoreProduct.objects.filter(
        store=Store.APP_STORE, product_id=news.product_id, grants=Grants.CREDIT, active=True
    ).first()
    row = _locked_app_store_row(news, product=product, account=None, actor=source)
    if row.account_id != (account.pk if account is not None else None):
        raise _RowChangedHands()
    if not _apply_news(row, news):
        return "stale"
    if account is None:
        return "before_credit"
    return _converge(row=row, account=account, source=source, actor=f"{Store.APP_STORE.value}:{source}"[:255])

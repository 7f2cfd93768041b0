"""Tool uses and tool grants: free allowance first, then uses bought in store packs, then
the account's paid balance.

Lock order, everywhere: the account row (accounts.services.lock_account), then the
allowance row. Every change of an allowance is a ledger entry whose `details` carry the
product, the allowance's deltas (`free_delta`, `purchased_delta`) and what they left
(`free_after`, `purchased_after`), which is what `reconcile` sums; a paid use also moves
the balance through ledger_post.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from functools import partial

from django.db import IntegrityError, transaction

from accounts.identity import Identity
from accounts.models import Account
from accounts.services import account_remember_last_seen, lock_account
from billing_site.errors import AccountInactive, IdempotencyMismatch, InvalidOperation
from ledger.models import EntryKind, LedgerEntry
from ledger.services import MAX_COUNT, ledger_post
from tools import metrics
from tools.allowance import daily_topup, paid_uses, utc_today
from tools.errors import ToolCreditsExhausted, UnknownProduct, tool_credits_detail
from tools.models import ToolAllowance, ToolCharge, ToolProduct
from tools.selectors import product_for, tool_charge_for_key

logger = logging.getLogger(__name__)


def _grant_entry(
    *,
    account: Account,
    allowance: ToolAllowance,
    amount: int,
    source: str,
    actor: str,
    reason: str,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """Record free uses added to an allowance (the caller holds both row locks)."""
    allowance.free_remaining += amount
    product_type = allowance.product.product_type
    entry = ledger_post(
        account=account,
        kind=EntryKind.TOOL_GRANT,
        actor=actor,
        reason=reason,
        details={
            "product": product_type,
            "source": source,
            "free_delta": amount,
            "free_after": allowance.free_remaining,
        },
        idempotency_key=idempotency_key,
    )
    transaction.on_commit(partial(metrics.observe_tool_grant, product=product_type, source=source, free_uses=amount))
    return entry


def _lock_allowance(*, account: Account, product: ToolProduct, actor: str) -> ToolAllowance:
    """The account's allowance for the product, locked: made with the initial allowance on
    first use, topped up once on the first use of a later UTC day. The account row must be
    locked already: that is what makes the creation and the top-up happen once."""
    today = utc_today()
    allowance = ToolAllowance.objects.select_for_update().filter(account=account, product=product).first()
    if allowance is None:
        allowance = ToolAllowance.objects.create(account=account, product=product, topped_up_on=today)
        if product.free_initial:
            _grant_entry(
                account=account,
                allowance=allowance,
                amount=product.free_initial,
                source="initial",
                actor=actor,
                reason=f"{product.product_type}: free uses on first use",
            )
        return allowance
    allowance.product = product
    if allowance.topped_up_on < today:
        allowance.topped_up_on = today
        amount = daily_topup(product=product, free_remaining=allowance.free_remaining)
        if amount:
            _grant_entry(
                account=account,
                allowance=allowance,
                amount=amount,
                source="daily",
                actor=actor,
                reason=f"{product.product_type}: daily free uses for {today.isoformat()}",
            )
    return allowance


def _replay(existing: ToolCharge, product_type: str) -> tuple[ToolCharge, bool]:
    if existing.product.product_type != product_type:
        raise IdempotencyMismatch(
            "This idempotency key was already used for another product.",
            extra={"tool_charge_id": str(existing.pk), "product_type": existing.product.product_type},
            account_id=existing.account_id,
        )
    return existing, False


def tool_charge_create(
    *, identity: Identity, product_type: str, idempotency_key: str, actor: str
) -> tuple[ToolCharge, bool]:
    """Charge one use of a tool: a free use while the allowance lasts, else its price from
    the paid balance. Returns (charge, created): a retry with the key returns the original charge, created False.

    Raises UnknownProduct (422), IdempotencyMismatch (422: the key was used for another
    product), AccountInactive (403) and ToolCreditsExhausted (402).
    """
    # A retry answers its original result even if the product was deactivated since.
    existing = tool_charge_for_key(identity, idempotency_key)
    if existing is not None:
        return _replay(existing, product_type)
    product = product_for(product_type)
    if product is None:
        raise UnknownProduct(product_type)
    try:
        with transaction.atomic():
            account = lock_account(identity=identity, actor=actor)
            # A request with this key may have committed while we waited for the lock.
            existing = tool_charge_for_key(identity, idempotency_key)
            if existing is not None:
                return _replay(existing, product_type)
            if not account.is_active:
                raise AccountInactive(
                    f"Account {account.status}", extra={"status": account.status}, account_id=account.pk
                )
            allowance = _lock_allowance(account=account, product=product, actor=actor)
            price = product.effective_price_minor
            used_purchased = False
            if allowance.free_remaining > 0:
                used_free, cost = True, 0
            elif allowance.purchased_remaining > 0:
                used_free, used_purchased, cost = False, True, 0
            elif account.balance_minor >= price:
                used_free, cost = False, price
            else:
                raise ToolCreditsExhausted(
                    tool_credits_detail(
                        product_type=product_type, balance_minor=account.balance_minor, price_minor=price
                    ),
                    extra={"product_type": product_type},
                    account_id=account.pk,
                )
            if allowance.total_uses >= MAX_COUNT:
                raise InvalidOperation("This allowance has reached the largest use count it can hold.")
            allowance.free_remaining -= 1 if used_free else 0
            allowance.purchased_remaining -= 1 if used_purchased else 0
            allowance.total_uses += 1
            charge = ToolCharge(
                account=account,
                product=product,
                idempotency_key=idempotency_key,
                used_free=used_free,
                used_purchased=used_purchased,
                cost_minor=cost,
                free_remaining_after=allowance.free_remaining,
                purchased_remaining_after=allowance.purchased_remaining,
                paid_credits_after=paid_uses(balance_minor=account.balance_minor - cost, product=product),
                total_uses_after=allowance.total_uses,
                actor=actor,
            )
            charge.ledger_entry = ledger_post(
                account=account,
                kind=EntryKind.TOOL_CHARGE,
                balance_delta_minor=-cost,
                actor=actor,
                reason=f"{product_type}: tool use",
                details={
                    "product": product_type,
                    "used_free": used_free,
                    "free_delta": -1 if used_free else 0,
                    "free_after": allowance.free_remaining,
                    "purchased_delta": -1 if used_purchased else 0,
                    "purchased_after": allowance.purchased_remaining,
                    "cost_minor": cost,
                    "tool_charge_id": str(charge.id),
                    "idempotency_key": idempotency_key,
                },
            )
            allowance.save(
                update_fields=["free_remaining", "purchased_remaining", "total_uses", "topped_up_on", "updated_at"]
            )
            charge.save(force_insert=True)
    except IntegrityError:
        # Another request with this key committed first (the unique constraint's last word).
        existing = tool_charge_for_key(identity, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, product_type)
    account_remember_last_seen(account=account, identity=identity)
    logger.info(
        "tool charge created",
        extra={
            "event": "tool_charge",
            "outcome": "free" if used_free else "purchased" if used_purchased else "paid",
            "account_id": str(account.pk),
            "product": product_type,
            "tool_charge_id": str(charge.pk),
            "cost_minor": cost,
        },
    )
    return charge, True


def tool_allowance_grant(
    *, account_id: uuid.UUID | str, product: ToolProduct, free_uses: int, reason: str, actor: str, idempotency_key: str
) -> tuple[LedgerEntry, bool]:
    """Staff grant of free uses of a tool (above the cap if they say so), idempotent on the
    key: returns (entry, created); a second submission of the same form grants nothing (created False)."""
    if free_uses <= 0:
        raise InvalidOperation("A tool grant must add at least one free use.")
    if not reason.strip():
        raise InvalidOperation("A reason is required.")
    try:
        with transaction.atomic():
            account = Account.objects.select_for_update().get(pk=account_id)
            existing = LedgerEntry.objects.filter(account=account, idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing, False
            if not account.takes_new_credit:
                raise InvalidOperation(f"Account {account} is closed: it takes no new credit.")
            allowance = _lock_allowance(account=account, product=product, actor=actor)
            if allowance.free_remaining + free_uses > MAX_COUNT:
                raise InvalidOperation("This would take the allowance past the largest count it can hold.")
            entry = _grant_entry(
                account=account,
                allowance=allowance,
                amount=free_uses,
                source="staff",
                actor=actor,
                reason=reason,
                idempotency_key=idempotency_key,
            )
            allowance.save(update_fields=["free_remaining", "topped_up_on", "updated_at"])
    except IntegrityError:
        existing = LedgerEntry.objects.filter(account_id=account_id, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing, False
    logger.info(
        "tool allowance granted",
        extra={"account_id": str(account.pk), "product": product.product_type, "free_uses": free_uses, "actor": actor},
    )
    return entry, True


def tool_purchased_uses_add(
    *, account: Account, product: ToolProduct, uses: int, actor: str, reason: str, details: Mapping[str, object]
) -> tuple[LedgerEntry, ToolAllowance]:
    """Add uses bought in a store pack to the account's allowance of the tool (never capped).

    The caller holds the account row lock in its transaction (the store purchase's credit
    transaction), so the pack and the purchase row commit or roll back together.
    """
    if uses <= 0:
        raise InvalidOperation("A tool pack must add at least one use.")
    allowance = _lock_allowance(account=account, product=product, actor=actor)
    if allowance.purchased_remaining + uses > MAX_COUNT:
        raise InvalidOperation("This would take the tool's purchased uses past the largest count it can hold.")
    entry = _post_purchased(
        account=account,
        product=product,
        allowance=allowance,
        delta=uses,
        source="store",
        actor=actor,
        reason=reason,
        details=details,
    )
    return entry, allowance


def tool_purchased_uses_take_back(
    *, account: Account, product: ToolProduct, uses: int, actor: str, reason: str, details: Mapping[str, object]
) -> tuple[LedgerEntry, int]:
    """Take back uses of a refunded tool pack, capped by the purchased uses left.

    Returns (entry, uses taken); the caller records the rest as the shortfall (uses already
    spent). The caller holds the account row lock.
    """
    allowance = _lock_allowance(account=account, product=product, actor=actor)
    taken = min(uses, allowance.purchased_remaining)
    entry = _post_purchased(
        account=account,
        product=product,
        allowance=allowance,
        delta=-taken,
        source="store_reversal",
        actor=actor,
        reason=reason,
        details={**details, "shortfall_uses": uses - taken},
    )
    return entry, taken


def _post_purchased(
    *,
    account: Account,
    product: ToolProduct,
    allowance: ToolAllowance,
    delta: int,
    source: str,
    actor: str,
    reason: str,
    details: Mapping[str, object],
) -> LedgerEntry:
    """Move the allowance's purchased uses by `delta` and record it on the ledger (a tool
    entry: the balance does not move). The caller holds the account and allowance locks."""
    allowance.purchased_remaining += delta
    entry = ledger_post(
        account=account,
        kind=EntryKind.TOOL_GRANT,
        actor=actor,
        reason=reason,
        details={
            **details,
            "product": product.product_type,
            "source": source,
            "free_delta": 0,
            "free_after": allowance.free_remaining,
            "purchased_delta": delta,
            "purchased_after": allowance.purchased_remaining,
        },
    )
    # free_remaining too: the allowance may have been made, or topped up, just now
    allowance.save(update_fields=["free_remaining", "purchased_remaining", "topped_up_on", "updated_at"])
    return entry

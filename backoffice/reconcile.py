"""Reconciliation: does every account agree with its ledger, every purchase with its credit
and with its refunds and disputes (backoffice.reconcile_reversals), and (optionally) all of it
with Stripe? Read-only: it reports, and suggests the commands that would fix each finding;
it never moves money itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Account
from backoffice.findings import Discrepancy
from backoffice.reconcile_reversals import check_reversals, check_stripe_reversals
from ledger.invariants import daily_free_uses_findings
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Purchase, PurchaseStatus
from tools.reconcile import check_tool_allowances

# Purchases that were paid (a refund happens after the credit, so those were credited too).
PAID_STATUSES = (PurchaseStatus.SUCCEEDED, PurchaseStatus.REFUNDED, PurchaseStatus.PARTIALLY_REFUNDED)


def purchase_grant_key(purchase: Purchase) -> str:
    """The idempotency key of a manual grant that stands in for a purchase's missing credit."""
    return f"purchase:{purchase.pk}"


def stripe_grant_key(payment_intent_id: str) -> str:
    """The idempotency key of a manual grant for a PaymentIntent we hold no purchase for."""
    return f"stripe:{payment_intent_id}"


def _identity_args(account: Account) -> str:
    args = f"--provider {shlex.quote(account.oauth_provider)} --external-id {shlex.quote(account.external_id)}"
    if account.tenant_id:
        args += f" --tenant {shlex.quote(account.tenant_id)}"
    return args


def _grant_command(account: Account, *, amount_minor: int, reason: str, key: str, adjustment: bool = False) -> str:
    kind = " --kind adjustment" if adjustment else ""
    return (
        f"manage.py grant_credits {_identity_args(account)} --amount-minor {amount_minor}{kind} "
        f"--reason {shlex.quote(reason)} --idempotency-key {shlex.quote(key)}"
    )


def check_accounts() -> list[Discrepancy]:
    """Balance, free uses and total uses of every account against the sums of its ledger."""
    charge_entries = (
        LedgerEntry.objects.filter(account=OuterRef("pk"), kind=EntryKind.CHARGE)
        .values("account")
        .annotate(n=Count("id"))
        .values("n")
    )
    accounts = (
        Account.objects.annotate(
            ledger_balance=Coalesce(Sum("ledger_entries__balance_delta_minor"), Value(0)),
            ledger_free_uses=Coalesce(Sum("ledger_entries__free_uses_delta"), Value(0)),
            ledger_uses=Coalesce(Subquery(charge_entries, output_field=IntegerField()), Value(0)),
        )
        .exclude(
            balance_minor=F("ledger_balance"),
            free_uses_remaining=F("ledger_free_uses"),
            total_uses=F("ledger_uses"),
        )
        .order_by("created_at")
    )
    found = []
    for account in accounts:
        problems = []
        if account.balance_minor != account.ledger_balance:
            problems.append(f"balance {account.balance_minor} but its ledger sums to {account.ledger_balance}")
        if account.free_uses_remaining != account.ledger_free_uses:
            problems.append(
                f"free uses {account.free_uses_remaining} but its ledger sums to {account.ledger_free_uses}"
            )
        if account.total_uses != account.ledger_uses:
            problems.append(f"total uses {account.total_uses} but its ledger has {account.ledger_uses} charges")
        fixes = []
        if account.balance_minor != account.ledger_balance or account.free_uses_remaining != account.ledger_free_uses:
            fixes.append(
                f"manage.py record_ledger_drift --account-id {account.pk} --reason "
                f"{shlex.quote('Reconcile: account changed outside the ledger')}"
                "   # records the difference; the account keeps what it has"
            )
            drift = account.ledger_balance - account.balance_minor
            if drift:
                fixes.append(
                    _grant_command(
                        account,
                        amount_minor=drift,
                        reason="Reconcile: restore the balance the ledger recorded",
                        key=f"reconcile:restore:{account.pk}:{account.ledger_balance}",
                        adjustment=True,
                    )
                    + "   # then, only if the ledger was right"
                )
        found.append(Discrepancy("account", f"account {account.pk} ({account})", "; ".join(problems), fixes))
    return found


def _purchase_credits() -> Any:
    """Purchases annotated with how many purchase credits they have (stand-in grants: `_stand_ins`)."""
    return Purchase.objects.select_related("account").annotate(
        credits=Count("ledger_entries", filter=Q(ledger_entries__kind=EntryKind.PURCHASE)),
        credited_minor=Coalesce(
            Sum("ledger_entries__balance_delta_minor", filter=Q(ledger_entries__kind=EntryKind.PURCHASE)), Value(0)
        ),
    )


def _stand_in_keys() -> set[tuple[Any, str]]:
    """(account id, key) of every grant or adjustment that may stand in for a purchase's credit."""
    return set(
        LedgerEntry.objects.filter(
            kind__in=[EntryKind.GRANT, EntryKind.ADJUSTMENT], idempotency_key__startswith="purchase:"
        ).values_list("account_id", "idempotency_key")
    )


def _stand_ins(purchase: Purchase, keys: set[tuple[Any, str]]) -> int:
    # Matched in Python with the very function that printed the fix: a key built in SQL
    # (a UUID cast to text) is hyphenated on PostgreSQL but 32 bare hex digits on SQLite,
    # so the printed fix never counted there. The key is unique per account: 0 or 1.
    return int((purchase.account_id, purchase_grant_key(purchase)) in keys)


def check_purchases() -> list[Discrepancy]:
    """Every paid purchase has exactly one credit of its amount; no credit lacks its purchase."""
    found = []
    stand_in_keys = _stand_in_keys()
    for purchase in _purchase_credits().filter(status__in=PAID_STATUSES).order_by("created_at"):
        credits = purchase.credits + _stand_ins(purchase, stand_in_keys)
        subject = f"purchase {purchase.pk} ({purchase.stripe_payment_intent_id or 'no PaymentIntent'})"
        if credits == 0:
            found.append(
                Discrepancy(
                    "purchase_not_credited",
                    subject,
                    f"{purchase.status}, {purchase.amount_minor} {purchase.currency} paid, but {purchase.account} "
                    f"was never credited {purchase.credit_minor} minor units",
                    [
                        _grant_command(
                            purchase.account,
                            amount_minor=purchase.credit_minor,
                            reason=f"Reconcile: credit for purchase {purchase.pk}, paid but never credited",
                            key=purchase_grant_key(purchase),
                        )
                    ],
                )
            )
        elif credits > 1:
            extra = purchase.credited_minor - purchase.credit_minor
            found.append(
                Discrepancy(
                    "purchase_credited_twice",
                    subject,
                    f"credited {credits} times ({purchase.credited_minor} minor units for {purchase.credit_minor})",
                    [
                        _grant_command(
                            purchase.account,
                            amount_minor=-extra,
                            reason=f"Reconcile: purchase {purchase.pk} was credited more than once",
                            key=f"reconcile:double:{purchase.pk}",
                            adjustment=True,
                        )
                    ]
                    if extra > 0
                    else [],
                )
            )
        elif purchase.credits == 1 and purchase.credited_minor != purchase.credit_minor:
            found.append(
                Discrepancy(
                    "purchase_credit_amount",
                    subject,
                    f"credited {purchase.credited_minor} minor units, the purchase is for {purchase.credit_minor}",
                )
            )

    orphans = (
        LedgerEntry.objects.filter(kind=EntryKind.PURCHASE)
        .filter(Q(purchase__isnull=True) | ~Q(purchase__status__in=PAID_STATUSES))
        .select_related("account", "purchase")
        .order_by("id")
    )
    for entry in orphans:
        why = (
            "names no purchase"
            if entry.purchase_id is None
            else f"its purchase {entry.purchase_id} is {entry.purchase.status}"
        )
        found.append(
            Discrepancy(
                "credit_without_purchase",
                f"ledger entry #{entry.pk} on {entry.account}",
                f"a purchase credit of {entry.balance_delta_minor} minor units that {why}",
                [
                    _grant_command(
                        entry.account,
                        amount_minor=-entry.balance_delta_minor,
                        reason=f"Reconcile: reverse purchase credit #{entry.pk} that has no paid purchase",
                        key=f"reconcile:reverse:{entry.pk}",
                        adjustment=True,
                    )
                    + "   # after checking the payment really failed"
                ],
            )
        )
    return found


def stripe_client() -> Any:
    import stripe

    if not settings.STRIPE_SECRET_KEY:
        raise RuntimeError("STRIPE_SECRET_KEY is not set: cannot compare with Stripe.")
    host = getattr(settings, "STRIPE_API_HOST", "")
    kwargs: dict[str, Any] = {"base_addresses": {"api": host}} if host else {}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, **kwargs)


def succeeded_payment_intents(client: Any) -> dict[str, dict[str, Any]]:
    """Every succeeded PaymentIntent Stripe holds for this account, by id."""
    found = {}
    for intent in client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
        if intent["status"] == "succeeded":
            found[intent["id"]] = intent.to_dict()
    return found


def check_stripe(client: Any) -> list[Discrepancy]:
    """Succeeded PaymentIntents we never credited, and purchase credits Stripe does not know."""
    intents = succeeded_payment_intents(client)
    credited: set[str] = set()
    stand_in_keys = _stand_in_keys()
    for purchase in _purchase_credits().exclude(stripe_payment_intent_id=None):
        if purchase.credits + _stand_ins(purchase, stand_in_keys) > 0:
            credited.add(purchase.stripe_payment_intent_id)
    credited.update(
        key.removeprefix("stripe:")
        for key in LedgerEntry.objects.filter(idempotency_key__startswith="stripe:").values_list(
            "idempotency_key", flat=True
        )
    )
    purchases = {
        p.stripe_payment_intent_id: p
        for p in Purchase.objects.select_related("account").filter(stripe_payment_intent_id__in=list(intents))
    }

    found = []
    for intent_id, intent in sorted(intents.items()):
        if intent_id in credited:
            continue
        amount = f"{intent.get('amount')} {str(intent.get('currency', '')).upper()}"
        purchase = purchases.get(intent_id)
        if purchase is not None:
            fixes = [
                _grant_command(
                    purchase.account,
                    amount_minor=purchase.credit_minor,
                    reason=f"Reconcile: credit for purchase {purchase.pk}, paid in Stripe but never credited",
                    key=purchase_grant_key(purchase),
                )
            ]
            detail = f"succeeded in Stripe ({amount}); our purchase {purchase.pk} is {purchase.status} and uncredited"
        else:
            account = _account_from_metadata(intent)
            uses = settings.BILLING_PACK_USES
            fixes = (
                [
                    _grant_command(
                        account,
                        amount_minor=uses * settings.BILLING_USE_PRICE_MINOR,
                        reason=f"Reconcile: Stripe PaymentIntent {intent_id} paid but never credited",
                        key=stripe_grant_key(intent_id),
                    )
                    + "   # check the amount paid first"
                ]
                if account
                else []
            )
            who = f" for {account}" if account else " naming no account of ours"
            detail = f"succeeded in Stripe ({amount}){who}, and we hold no purchase for it"
        found.append(Discrepancy("stripe_not_credited", f"PaymentIntent {intent_id}", detail, fixes))

    unknown = (
        LedgerEntry.objects.filter(kind=EntryKind.PURCHASE, purchase__isnull=False)
        .exclude(purchase__stripe_payment_intent_id__in=list(intents))
        .select_related("account", "purchase")
        .order_by("id")
    )
    for entry in unknown:
        intent_id = entry.purchase.stripe_payment_intent_id or "(none)"
        found.append(
            Discrepancy(
                "credit_unknown_to_stripe",
                f"ledger entry #{entry.pk} on {entry.account}",
                f"credits purchase {entry.purchase_id} for PaymentIntent {intent_id}, "
                "which Stripe does not list as succeeded",
                [
                    _grant_command(
                        entry.account,
                        amount_minor=-entry.balance_delta_minor,
                        reason=f"Reconcile: reverse credit #{entry.pk}, not paid in Stripe",
                        key=f"reconcile:reverse:{entry.pk}",
                        adjustment=True,
                    )
                    + "   # after checking Stripe's dashboard"
                ],
            )
        )
    return found


def _account_from_metadata(intent: dict[str, Any]) -> Account | None:
    account_id = (intent.get("metadata") or {}).get("account_id")
    if not account_id:
        return None
    try:
        return Account.objects.filter(pk=account_id).first()
    except ValidationError:  # not a UUID
        return None


def reconcile(*, stripe_client: Any | None = None) -> list[Discrepancy]:
    found = check_accounts() + check_purchases() + check_reversals()
    found += [Discrepancy(d.check, d.subject, d.detail, d.fixes) for d in check_tool_allowances()]
    found += [Discrepancy("daily_free_uses", *finding) for finding in daily_free_uses_findings()]
    if stripe_client is not None:
        found += check_stripe(stripe_client)
        found += check_stripe_reversals(stripe_client)
    return found


def format_report(found: Iterable[Discrepancy]) -> list[str]:
    lines = []
    for n, item in enumerate(found, 1):
        lines.append(f"{n}. [{item.check}] {item.subject}: {item.detail}")
        lines.extend(f"     fix: {fix}" for fix in item.fixes)
    return lines

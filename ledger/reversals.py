"""The one rule by which any reversal takes credit back: a Stripe refund or chargeback
(purchases.settlement) and a store refund (stores.services) alike.

A reversal takes what it claims, capped by what is left on the balance: a balance never
goes below zero, so credit already spent cannot be taken. What it could not take is the
shortfall, recorded on the reversal's own row; a shortfall the caller flags (a chargeback,
a store refund) is a fraud signal: logged and counted once the transaction commits and,
with BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL, the account is suspended.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from billing_site import metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Take:
    """What a reversal takes now, and what it cannot (the shortfall)."""

    taken: int
    shortfall: int


def reversal_take(*, wanted: int, available: int) -> Take:
    """Take `wanted`, capped by `available` (a balance, or a tool's purchased uses)."""
    if wanted < 0:
        raise ValueError("a reversal takes a non-negative amount")
    taken = min(wanted, max(available, 0))
    return Take(taken=taken, shortfall=wanted - taken)


def reversal_flag_shortfall(
    *, account: Account, shortfall_minor: int, what: str, subject: str, actor: str, log_fields: dict[str, object]
) -> None:
    """Flag credit a reversal found already spent; call inside the reversal's transaction.

    The log line and the metric wait for the commit (a rolled-back delivery that is retried
    says nothing); the suspension, when configured, is part of the same transaction.
    """

    def signal() -> None:
        logger.warning(
            "%s left a shortfall: the credit was already spent",
            what.lower(),
            extra={"account_id": str(account.pk), "shortfall_minor": shortfall_minor, **log_fields},
        )

    transaction.on_commit(signal)
    metrics.observe_chargeback_shortfall(amount_minor=shortfall_minor)
    if settings.BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL and account.status == AccountStatus.ACTIVE:
        account_set_status(
            account_id=account.pk,
            status=AccountStatus.SUSPENDED,
            reason=f"{what} left a shortfall of {shortfall_minor} ({subject})",
            actor=actor,
        )

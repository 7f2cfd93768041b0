"""The pair of row locks every money path on a purchase takes, always in this order."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Account
from purchases.models import Purchase


def lock_account_and_purchase(*, purchase: Purchase) -> tuple[Account, Purchase]:
    """Lock the purchase's account, then the purchase, and return both fresh from the database.

    One order everywhere (account, then purchase) so two paths can never deadlock; the
    caller must be inside `transaction.atomic()` (the locks last until it commits).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_account_and_purchase must run inside transaction.atomic()")
    account = Account.objects.select_for_update().get(pk=purchase.account_id)
    return account, Purchase.objects.select_for_update().get(pk=purchase.pk)

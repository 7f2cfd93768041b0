"""Reads of charges."""

from __future__ import annotations

from accounts.identity import Identity
from charges.models import Charge


def charge_for_key(*, identity: Identity, idempotency_key: str) -> Charge | None:
    """The identity's charge made with this idempotency key, if any.

    One indexed read (the account by its unique identity, joined to its charge by the unique
    (account, key) pair), no lock: it answers every replay, the hottest request there is
    (the LiteLLM proxy retries each call of an interaction, up to 70 times).
    """
    # No ORDER BY: the unique indexes allow one row at most, and an ordering would invite the
    # planner to walk an index on the sort column instead.
    found = Charge.objects.filter(identity.lookup("account__"), idempotency_key=idempotency_key).order_by()[:1]
    return next(iter(found), None)

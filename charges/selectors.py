"""Reads of charges."""

from __future__ import annotations

from accounts.identity import Identity
from accounts.models import Account
from billing_site.sql import RowLoader, fetch_one, table
from charges.models import Charge

_CHARGE = RowLoader(Charge)


def charge_for_key(identity: Identity, idempotency_key: str) -> Charge | None:
    """The identity's charge made with this idempotency key, if any.

    One indexed join and no lock: the replay path (LiteLLM retries every call of an
    interaction) must cost no more than a credit check. Plain SQL: see billing_site.sql.
    """
    return fetch_one(
        _CHARGE,
        f"SELECT {{columns}} FROM {table(Charge)} t JOIN {table(Account)} a ON a.id = t.account_id"
        " WHERE a.tenant_id = %s AND a.oauth_provider = %s AND a.external_id = %s AND t.idempotency_key = %s",
        [identity.tenant_id, identity.oauth_provider, identity.external_id, idempotency_key],
    )

"""Reads of charges."""

from __future__ import annotations

from accounts.identity import Identity
from charges.models import Charge

# Every replay's one read: the account by its unique identity, joined to its charge by the
# unique (account, key) pair. Written out because building the same QuerySet costs more
# instructions than the rest of a replay (docs/performance.md); `raw()` still builds the
# Charge as the ORM does.
CHARGE_FOR_KEY_SQL = (
    "SELECT charges_charge.* FROM charges_charge"
    " JOIN accounts_account ON accounts_account.id = charges_charge.account_id"
    " WHERE accounts_account.tenant_id = %s AND accounts_account.oauth_provider = %s"
    " AND accounts_account.external_id = %s AND charges_charge.idempotency_key = %s"
)


def charge_for_key(*, identity: Identity, idempotency_key: str) -> Charge | None:
    """The identity's charge made with this idempotency key, if any (one indexed read, no lock).

    It answers every replay, the hottest request there is (the LiteLLM proxy retries each
    call of an interaction, up to 70 times).
    """
    params = [identity.tenant_id, identity.oauth_provider, identity.external_id, idempotency_key]
    return next(iter(Charge.objects.raw(CHARGE_FOR_KEY_SQL, params)), None)

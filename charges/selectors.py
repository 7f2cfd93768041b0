"""Reads of charges."""

from __future__ import annotations

from django.db.models import FilteredRelation, Q

from accounts.identity import Identity
from accounts.models import Account
from accounts.selectors import ACCOUNT_COLUMNS, account_from_row
from billing_site.prepared import PreparedQuery
from charges.models import Charge

_CHARGE_FIELDS = [(field.name, field.attname) for field in Charge._meta.concrete_fields]
_CHARGE_COLUMNS = tuple(attname for _, attname in _CHARGE_FIELDS)
_CHARGE_PK = len(ACCOUNT_COLUMNS) + _CHARGE_COLUMNS.index(Charge._meta.pk.attname)

# Account LEFT JOIN its charge on the (account, key) unique index, compiled once
# (billing_site.prepared: building this join costs 1 ms of CPU per charge otherwise).
_ACCOUNT_AND_CHARGE = PreparedQuery(
    lambda tenant_id, oauth_provider, external_id, idempotency_key: (
        Account.objects.filter(tenant_id=tenant_id, oauth_provider=oauth_provider, external_id=external_id)
        .annotate(replay=FilteredRelation("charges", condition=Q(charges__idempotency_key=idempotency_key)))
        .order_by()
        .values_list(*ACCOUNT_COLUMNS, *(f"replay__{name}" for name, _ in _CHARGE_FIELDS))
    ),
    ["tenant_id", "oauth_provider", "external_id", "idempotency_key"],
)


def account_or_charge_for_key(*, identity: Identity, idempotency_key: str) -> tuple[Account | None, Charge | None]:
    """The identity's charge made with this key, else its account (or neither), in one
    indexed lookup: `(None, charge)`, `(account, None)` or `(None, None)`.

    A replay (the LiteLLM proxy retries every call of an interaction, up to 70 times) is
    answered from this one statement, without building the account model it does not
    need (about 8k instructions); a new charge starts from the account row it read
    (charges.services).
    """
    rows = _ACCOUNT_AND_CHARGE.rows(
        tenant_id=identity.tenant_id,
        oauth_provider=identity.oauth_provider,
        external_id=identity.external_id,
        idempotency_key=idempotency_key,
    )
    if not rows:
        return None, None
    row = rows[0]
    if row[_CHARGE_PK] is None:  # no charge with this key: the LEFT JOIN found nothing
        return account_from_row(row[: len(ACCOUNT_COLUMNS)]), None
    return None, Charge.from_db("default", _CHARGE_COLUMNS, row[len(ACCOUNT_COLUMNS) :])


def charge_for_key(*, identity: Identity, idempotency_key: str) -> Charge | None:
    """The identity's charge made with this idempotency key, if any (one indexed join, no lock)."""
    return Charge.objects.filter(identity.lookup("account__"), idempotency_key=idempotency_key).first()

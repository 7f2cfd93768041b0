"""Reads of charges."""

from __future__ import annotations

from django.db.models import F, FilteredRelation, Q

from accounts.identity import Identity
from accounts.models import Account
from charges.models import Charge

_CHARGE_FIELDS = [(field.name, field.attname) for field in Charge._meta.concrete_fields]
_PK_INDEX = [attname for _, attname in _CHARGE_FIELDS].index(Charge._meta.pk.attname)


def account_and_charge_for_key(*, identity: Identity, idempotency_key: str) -> tuple[Account | None, Charge | None]:
    """The identity's account and its charge made with this key, in one indexed lookup.

    A replay (the LiteLLM proxy retries every call of an interaction, up to 70 times) is
    answered from this one statement; a new charge starts from the account row it read
    (see charges.services). Account LEFT JOIN its charge on the (account, key) unique index.
    """
    replay = {f"replay_{attname}": F(f"replay__{name}") for name, attname in _CHARGE_FIELDS}
    queryset = (
        Account.objects.filter(identity.lookup())
        .annotate(replay=FilteredRelation("charges", condition=Q(charges__idempotency_key=idempotency_key)))
        .annotate(**replay)
        .order_by()
    )
    account = next(iter(queryset[:1]), None)
    if account is None:
        return None, None
    values = [getattr(account, f"replay_{attname}") for _, attname in _CHARGE_FIELDS]
    if values[_PK_INDEX] is None:  # no charge with this key: the LEFT JOIN found nothing
        return account, None
    return account, Charge.from_db(queryset.db, [attname for _, attname in _CHARGE_FIELDS], values)


def charge_for_key(*, identity: Identity, idempotency_key: str) -> Charge | None:
    """The identity's charge made with this idempotency key, if any (one indexed join, no lock)."""
    return Charge.objects.filter(identity.lookup("account__"), idempotency_key=idempotency_key).first()

"""See billing_site.db: the ENGINE is "billing_site.db"."""

from __future__ import annotations

import datetime
import select
from functools import lru_cache
from typing import Any

from django.db.backends.postgresql import base
from django.db.backends.postgresql.base import *  # noqa: F403  (the backend module's public names)
from psycopg import adapt, adapters
from psycopg.pq import Format

TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid
# psycopg's own timestamptz loader: in C with psycopg[binary].
_PSYCOPG_TIMESTAMPTZ_LOADER = adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)


class UtcTimestamptzLoader(adapt.Loader):
    """timestamptz values parsed by psycopg's C loader, for a connection in UTC.

    Django registers its own loader (a Python subclass of psycopg's pure-Python one that
    then swaps the tzinfo for Django's), which makes every timestamp column of every row
    parse in Python. The connection's TimeZone is UTC (Django sets it; PgBouncer keeps
    it), so psycopg's C loader already returns datetimes in `datetime.timezone.utc`, the
    same values; on a connection in another zone it would return the same instant in
    that zone, never a wrong one.
    docs/performance.md has what this buys. `timezone` is what Django's create_cursor
    compares against its own (a mismatch would register Django's loader on the cursor).
    """

    timezone = datetime.UTC

    def __init__(self, oid: int, context: Any = None):
        super().__init__(oid, context)
        assert _PSYCOPG_TIMESTAMPTZ_LOADER is not None, "psycopg has a timestamptz loader"
        self._load = _PSYCOPG_TIMESTAMPTZ_LOADER(oid, context).load

    def load(self, data: Any) -> datetime.datetime:
        loaded: datetime.datetime = self._load(data)
        return loaded


@lru_cache
def utc_adapters(template: adapt.AdaptersMap) -> adapt.AdaptersMap:
    """Django's adapters map for the connection, with timestamptz loaded in C."""
    context = adapt.AdaptersMap(template)
    context.register_loader("timestamptz", UtcTimestamptzLoader)
    return context


class DatabaseWrapper(base.DatabaseWrapper):  # type: ignore[no-redef]  # replaces the backend module's own, as a backend does
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if self.timezone is datetime.UTC and "context" in params:
            params["context"] = utc_adapters(params["context"])
        return params

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        try:
            readable, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        if readable:
            # Idle connections receive nothing unless the server is telling us it is gone
            # (or sent a notice): let the real check decide.
            return super().is_usable()
        return True

"""See billing_site.db: the ENGINE is "billing_site.db"."""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from django.db.backends.postgresql.base import *  # noqa: F403  (the backend module's public names)


class DatabaseWrapper(base.DatabaseWrapper):
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

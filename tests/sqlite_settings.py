"""The service's own settings on SQLite, with the schema built from the models (no migrations).

For tests that run the real server on SQLite as a subprocess: `migrate --run-syncdb` takes
seconds this way instead of dj-stripe's ~45 s of migrations.
"""

from billing_site.settings import *  # noqa: F403


class _NoMigrations(dict):
    def __contains__(self, app_label: object) -> bool:
        return True

    def __getitem__(self, app_label: str) -> None:
        return None


MIGRATION_MODULES = _NoMigrations()

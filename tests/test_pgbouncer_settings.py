"""DB_PGBOUNCER=1: the settings transaction pooling needs, switched on by one variable."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.live import ROOT

SHOW = (
    "import json; from django.conf import settings as s; d = s.DATABASES['default']; "
    "print(json.dumps({'options': d['OPTIONS'], 'cursors': d.get('DISABLE_SERVER_SIDE_CURSORS', False), "
    "'engine': d['ENGINE'], 'max_age': d['CONN_MAX_AGE']}))"
)


def database_settings(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {SHOW}"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "billing_site.settings",
            "DJANGO_SECRET_KEY": "test",
            "DATABASE_URL": url,
            **env,
        },
        capture_output=True,
        text=True,
    )


def test_without_pgbouncer_each_connection_carries_its_timeouts_as_startup_options():
    result = database_settings("postgres://billing@db:5432/billing")
    shown = json.loads(result.stdout)
    assert "-c statement_timeout=5000 -c lock_timeout=5000" in shown["options"]["options"]
    assert shown["cursors"] is False


def test_db_pgbouncer_turns_off_server_side_cursors_and_startup_options():
    result = database_settings("postgres://billing@pgbouncer:6432/billing", DB_PGBOUNCER="1")
    shown = json.loads(result.stdout)
    assert shown == {"options": {"connect_timeout": 3}, "cursors": True, "engine": "billing_site.db", "max_age": 60}


def test_db_pgbouncer_refuses_options_that_need_a_session():
    for query in ("server_side_binding=true", "options=-c%20search_path%3Dx", "pool=true"):
        result = database_settings(f"postgres://billing@pgbouncer:6432/billing?{query}", DB_PGBOUNCER="1")
        assert result.returncode != 0
        assert "DB_PGBOUNCER=1: the database option" in result.stderr, (query, result.stderr[-500:])

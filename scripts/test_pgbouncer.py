"""make test-pgbouncer: the test suite with every connection through PgBouncer.

A host pgbouncer (Debian's, started with deploy/pgbouncer/entrypoint.sh, transaction
pooling, on a free loopback port) in front of DATABASE_URL's server; DB_PGBOUNCER=1 for
the tests and for every server they start. PgBouncer cannot create or drop the test
database while it holds connections to it, so this script makes it directly on
PostgreSQL, runs pytest with --reuse-db, and drops it afterwards.

    .venv/bin/python scripts/test_pgbouncer.py [pytest arguments]

Not run through PgBouncer: tests/test_database_outage.py (it runs its own PostgreSQL
cluster, with the timeouts as startup options, and no PgBouncer in front of it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import environ
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.topology import PgBouncer  # noqa: E402

EXCLUDED = ["tests/test_database_outage.py"]


def admin_connection(settings_dict: dict) -> psycopg.Connection:
    return psycopg.connect(
        host=settings_dict.get("HOST") or "127.0.0.1",
        port=settings_dict.get("PORT") or 5432,
        user=settings_dict.get("USER") or "postgres",
        password=settings_dict.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def main(args: list[str]) -> int:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing")
    settings_dict = environ.Env.db_url_config(url)
    name = f"{settings_dict['NAME']}_pgbouncer"
    test_name = f"test_{name}"  # what pytest-django makes of NAME
    with admin_connection(settings_dict) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{test_name}"')
        conn.execute(f'CREATE DATABASE "{test_name}"')
    # Concurrency tests hold up to ~60 transactions at once (each needs a server connection).
    bouncer = PgBouncer(settings_dict, pool_size=int(os.environ.get("PGBOUNCER_POOL_SIZE", "30")))
    started = time.monotonic()
    try:
        env = {**os.environ, "DATABASE_URL": bouncer.database_url(name), "DB_PGBOUNCER": "1"}
        ignore = [f"--ignore={path}" for path in EXCLUDED]
        command = [sys.executable, "-m", "pytest", "--reuse-db", *ignore, *args]
        print(f"test-pgbouncer: through pgbouncer on 127.0.0.1:{bouncer.port}: {' '.join(command[2:])}")
        status = subprocess.run(command, cwd=ROOT, env=env).returncode
    finally:
        bouncer.stop()
        with admin_connection(settings_dict) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{test_name}"')
    print(f"test-pgbouncer: {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

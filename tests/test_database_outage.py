"""A database outage: 503 + Retry-After (never a 500, never a hang), and recovery without a restart.

The test owns a throwaway PostgreSQL cluster (initdb + pg_ctl as the postgres user, on its
own port and socket directory under /tmp), so stopping it touches nothing else. The
service runs under gunicorn with the production settings, pointed at that cluster.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.live import ROOT, Gunicorn, request, server_env, unused_port

PG_PORT = unused_port()
APP_PORT = unused_port()
CONNECT_TIMEOUT_S = 2
STATEMENT_TIMEOUT_MS = 1500

pytestmark = pytest.mark.django_db


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_postgres(*cmd: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return list(cmd)


class Cluster:
    """A PostgreSQL cluster of our own in a temporary directory."""

    def __init__(self, bin_dir: Path, port: int):
        self.bin, self.port = bin_dir, port
        self.dir = Path(tempfile.mkdtemp(prefix="billing-outage-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.url = f"postgres://postgres@127.0.0.1:{port}/billing"
        subprocess.run(
            _as_postgres(str(bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.dir / "log"),
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"),
            check=False,
            capture_output=True,
        )

    def psql(self, database: str, *args: str) -> None:
        subprocess.run(
            [
                str(self.bin / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def outage_setup(django_db_setup, django_db_blocker, tmp_path_factory):
    """The cluster, with the test database's schema and an API key, and the service on it."""
    bin_dir = _pg_bin()
    if bin_dir is None or (shutil.which("runuser") is None and os.geteuid() == 0):
        pytest.skip("needs PostgreSQL's server binaries (initdb, pg_ctl) and runuser")
    cluster = Cluster(bin_dir, PG_PORT)
    server = None
    try:
        cluster.start()
        cluster.psql("postgres", "-c", "CREATE DATABASE billing")
        with django_db_blocker.unblock():
            settings_dict = connection.settings_dict
        # The schema pytest built from the models, copied over (faster than migrating).
        schema = subprocess.run(
            [
                str(bin_dir / "pg_dump"),
                "--schema-only",
                "--no-owner",
                "-h",
                settings_dict.get("HOST") or "127.0.0.1",
                "-p",
                str(settings_dict.get("PORT") or 5432),
                "-U",
                settings_dict.get("USER") or "postgres",
                settings_dict["NAME"],
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        schema_file = cluster.dir / "schema.sql"
        schema_file.write_text(schema)
        cluster.psql("billing", "-f", str(schema_file))
        env = server_env(
            cluster.url,
            DB_CONNECT_TIMEOUT_S=str(CONNECT_TIMEOUT_S),
            DB_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS),
        )
        created = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "create_api_key",
                "--name",
                "outage",
                "--permissions",
                "read,write",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        key = created.stdout.strip().splitlines()[-1]
        server = Gunicorn(APP_PORT, env, workers=2, log_path=tmp_path_factory.mktemp("outage") / "server.log")
        yield cluster, server, key
    finally:
        if server is not None:
            server.stop()
        cluster.remove()


def timed(url: str, **kwargs):
    started = time.monotonic()
    status, headers, body = request(url, **kwargs)
    return status, headers, body, time.monotonic() - started


def test_the_service_answers_503_while_the_database_is_down_and_recovers(outage_setup, user):
    cluster, server, key = outage_setup
    check = (f"{server.url}/v1/billing/credits/check",)
    auth = {"X-API-Key": key}
    charge = {**user, "amount_minor": 100}

    assert request(*check, method="POST", body=user, headers=auth)[0] == 200
    assert request(f"{server.url}/health")[0] == 200

    cluster.stop()
    try:
        for i in range(4):  # several requests: both workers, with their persistent connections
            status, headers, body, seconds = timed(*check, method="POST", body=user, headers=auth)
            assert status == 503, body
            assert headers["Retry-After"] == "5"
            assert body["code"] == "service_unavailable"
            assert seconds < CONNECT_TIMEOUT_S + 2
            status, headers, body, _ = timed(
                f"{server.url}/v1/billing/charges",
                method="POST",
                body={**charge, "idempotency_key": f"down-{i}"},
                headers=auth,
            )
            assert (status, headers.get("Retry-After")) == (503, "5"), body
        status, headers, body, seconds = timed(f"{server.url}/health")
        assert (status, headers["Retry-After"], body["status"]) == (503, "5", "unhealthy")
        assert seconds < CONNECT_TIMEOUT_S + 2
    finally:
        cluster.start()

    # Back without restarting gunicorn: every request answers again.
    statuses = [request(*check, method="POST", body=user, headers=auth)[0] for _ in range(6)]
    assert statuses == [200] * 6
    assert request(f"{server.url}/health")[0] == 200
    status, _, body = request(
        f"{server.url}/v1/billing/charges", method="POST", body={**charge, "idempotency_key": "after"}, headers=auth
    )
    assert status == 201, body


def test_a_stuck_lock_answers_503_within_the_lock_timeout(outage_setup, user):
    cluster, server, key = outage_setup
    auth = {"X-API-Key": key}
    assert request(f"{server.url}/v1/billing/credits/check", method="POST", body=user, headers=auth)[0] == 200
    # Another session holds the account's row lock and does not let go.
    holder = subprocess.Popen(
        [
            str(cluster.bin / "psql"),
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "billing",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        holder.stdin.write(
            "BEGIN; SELECT 1 FROM accounts_account WHERE external_id = '{}' FOR UPDATE;\n".format(user["external_id"])
        )
        holder.stdin.flush()
        time.sleep(0.5)
        status, headers, body, seconds = timed(
            f"{server.url}/v1/billing/charges",
            method="POST",
            body={**user, "amount_minor": 100, "idempotency_key": "locked"},
            headers=auth,
        )
        assert (status, headers.get("Retry-After")) == (503, "5"), body
        assert seconds < STATEMENT_TIMEOUT_MS / 1000 + 2
    finally:
        holder.stdin.write("ROLLBACK;\n\\q\n")
        holder.stdin.close()
        holder.wait(timeout=10)
    status, _, body = request(
        f"{server.url}/v1/billing/charges",
        method="POST",
        body={**user, "amount_minor": 100, "idempotency_key": "unlocked"},
        headers=auth,
    )
    assert status == 201, body

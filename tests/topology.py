"""The scale-out topology as host processes on loopback ports: PgBouncer (transaction
pooling, the same entrypoint as its image), HAProxy, and gunicorn instances behind it."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.live import ROOT, Gunicorn, unused_port, wait_for_port

PGBOUNCER_ENTRYPOINT = ROOT / "deploy" / "pgbouncer" / "entrypoint.sh"


def _as_unprivileged() -> dict[str, Any]:
    """PgBouncer refuses to run as root: as root, run it as the postgres user."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class PgBouncer:
    """pgbouncer in front of the test database's server, on a loopback port, any database name."""

    def __init__(self, settings_dict: dict[str, Any], *, pool_size: int = 20, timeout_ms: int = 5000):
        self.port = unused_port()
        self.user = settings_dict.get("USER") or "postgres"
        self.dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.log = open(self.dir / "pgbouncer.log", "wb")
        # As root, pgbouncer runs as postgres, who may not be able to read the checkout (a clone
        # in a private home or `mktemp -d` folder): it runs a copy of the entrypoint from its own
        # directory, which it owns.
        entrypoint = self.dir / PGBOUNCER_ENTRYPOINT.name
        shutil.copyfile(PGBOUNCER_ENTRYPOINT, entrypoint)
        privileges = _as_unprivileged()
        if privileges:
            for path in (self.dir, entrypoint):
                os.chown(path, privileges["user"], privileges["group"])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DB_HOST": settings_dict.get("HOST") or "127.0.0.1",
            "DB_PORT": str(settings_dict.get("PORT") or 5432),
            "DB_NAME": "*",
            "DB_USER": self.user,
            "DB_PASSWORD": settings_dict.get("PASSWORD") or "",
            "DB_STATEMENT_TIMEOUT_MS": str(timeout_ms),
            "PGBOUNCER_LISTEN_ADDR": "127.0.0.1",
            "PGBOUNCER_PORT": str(self.port),
            "PGBOUNCER_AUTH_TYPE": "trust",  # loopback only; the server side still authenticates
            "PGBOUNCER_POOL_SIZE": str(pool_size),
            "PGBOUNCER_DIR": str(self.dir),
        }
        self.proc = subprocess.Popen(
            ["sh", str(entrypoint)], cwd=self.dir, env=env, stdout=self.log, stderr=self.log, **privileges
        )
        wait_for_port(self.port, self.proc)

    def database_url(self, name: str) -> str:
        """Clients authenticate as trusted on loopback; PgBouncer logs in to the server itself."""
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{name}"

    def output(self) -> str:
        return (self.dir / "pgbouncer.log").read_text(errors="replace")

    def stop(self) -> None:
        """Closes its server connections at once (SIGTERM), so the test database can be dropped."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


HAPROXY_CONFIG = """\
global
    log stderr format raw local0 warning
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch 1
    retry-on conn-failure
    default-server inter 500ms fall 2 rise 2
frontend api
    bind 127.0.0.1:{port}
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /health
    http-check send hdr Host localhost
    http-check expect status 200
    http-response set-header X-Served-By %s
{servers}
"""


class HAProxy:
    """haproxy on a loopback port, round robin over the named backends, which it names in X-Served-By."""

    def __init__(self, backends: dict[str, int]):
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="haproxy-"))
        servers = "\n".join(f"    server {name} 127.0.0.1:{port} check" for name, port in backends.items())
        config = self.dir / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        self.log = open(self.dir / "haproxy.log", "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=self.log, stderr=self.log)
        wait_for_port(self.port, self.proc)

    def output(self) -> str:
        return (self.dir / "haproxy.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def served_by(headers: dict[str, str]) -> str | None:
    """The instance HAProxy named in X-Served-By (it sends header names in lower case)."""
    return next((value for name, value in headers.items() if name.lower() == "x-served-by"), None)


def sigkill_instance(server: Gunicorn) -> None:
    """SIGKILL gunicorn's master and its workers at once: the instance dies as a crashed host would."""
    pids = [server.proc.pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == server.proc.pid:
                pids.append(int(entry.name))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    server.proc.wait()


class Redis:
    """The host's Redis (DB 8, as every test here uses), or one started on a free loopback port."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        port = 6379
        if not _answers(port):
            port = unused_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for_port(port, self.proc)
        self.url = f"redis://127.0.0.1:{port}/8"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex(("127.0.0.1", port)) != 0:
            return False
        sock.sendall(b"PING\r\n")
        try:
            return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

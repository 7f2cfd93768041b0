"""Drive `docker compose` (or Debian's docker-compose 1.29) for one project, and HTTP to it."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("DEPLOY_TEST_PROJECT", "cirisdeploytest")


def compose_command() -> list[str]:
    """`docker compose` where the plugin exists, else Debian's `docker-compose`."""
    configured = os.environ.get("COMPOSE")
    if configured:
        return shlex.split(configured)
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return ["docker", "compose"] if probe.returncode == 0 else ["docker-compose"]


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Compose:
    """One compose project: its file, its environment, its published loopback port."""

    file: str
    port: int = field(default_factory=free_loopback_port)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SECRET_KEY": "deploy-test-" + os.urandom(16).hex(),
            "BILLING_PUBLISH": f"127.0.0.1:{self.port}",
            "METRICS_TOKEN": "deploy-test-metrics",
            **self.env,
        }

    def command(self, *args: str) -> list[str]:
        return [*compose_command(), "-p", PROJECT, "-f", self.file, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = self.command(*args)
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{shlex.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def container(self, service: str) -> str:
        ids = self.run("ps", "-a", "-q", service).stdout.split()
        assert ids, f"no container for {service}"
        return ids[0]

    def inspect(self, service: str) -> dict[str, Any]:
        out = subprocess.run(["docker", "inspect", self.container(service)], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)[0]

    def exec(self, service: str, *command: str) -> str:
        return self.run("exec", "-T", service, *command).stdout

    def health(self, service: str) -> str:
        return self.inspect(service)["State"]["Health"]["Status"]

    def wait_health(self, service: str, status: str, timeout: float) -> float:
        """Seconds until the service's HEALTHCHECK reports `status`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.health(service) == status:
                return time.monotonic() - start
            time.sleep(1)
        raise AssertionError(f"{service} not {status} after {timeout} s: {self.inspect(service)['State']}")

    def logs(self, service: str) -> str:
        result = self.run("logs", "--no-color", service, check=False)
        return result.stdout + result.stderr

    def create_api_key(self, service: str = "app") -> str:
        out = self.exec(
            service, "python", "manage.py", "create_api_key", "--name", "deploy-test", "--permissions", "read,write"
        )
        return out.strip().splitlines()[-1]


def http(
    url: str,
    *,
    method: str = "GET",
    body: dict | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 20,
) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, raw, message = response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        status, raw, message = exc.code, exc.read(), exc.headers
    hdrs = {name.lower(): value for name, value in message.items()}  # HAProxy sends lower case
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, hdrs, parsed


def charge_body(key: str, external_id: str = "deploy@example.com") -> dict[str, Any]:
    return {
        "oauth_provider": "oauth:google",
        "external_id": external_id,
        "amount_minor": 100,
        "currency": "USD",
        "description": "deploy test",
        "idempotency_key": key,
        "metadata": {},
    }

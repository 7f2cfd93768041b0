"""A localstripe server for tests that talk to "Stripe" (session-scoped, loopback, ports 18240-18299
unless LOCALSTRIPE_PORTS="FIRST-LAST" says otherwise).

localstripe runs from its own virtualenv (`.venv-localstripe`, made by `make test` or here on
first use from the pinned requirements-localstripe.txt) so its aiohttp stays out of the app's
environment. One process serves the whole session (purchases' `localstripe` fixture too).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-localstripe"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements-localstripe.txt"
_first, _last = os.environ.get("LOCALSTRIPE_PORTS", "18240-18299").split("-")
PORTS = range(int(_first), int(_last) + 1)
SECRET_KEY = "sk_test_" + "0123456789abcdefABCDEF" * 2


def ensure_venv() -> Path:
    marker = VENV / ".installed"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
            check=True,
        )
        marker.touch()
    return PYTHON


def free_port(ports: range = PORTS) -> int:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")


def wait_for(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("localstripe exited (its output is in the test's temporary log)")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("localstripe did not start in time")


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    python = ensure_venv()
    launcher = ROOT / "scripts" / "localstripe_server.py"
    port = free_port()
    # A file, not a pipe: nobody reads the output, and a full pipe would block localstripe.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [str(python), str(launcher), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO")},
    )
    try:
        wait_for(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def stripe_settings(settings, localstripe_url: str):  # type: ignore[no-untyped-def]
    """Point the app's Stripe settings at localstripe for one test."""
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_HOST = localstripe_url
    return settings

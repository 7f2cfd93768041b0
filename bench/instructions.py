"""Instructions per request of one gunicorn worker, the bare DRF app against the service.

Kinds: a credit check, a new charge (201) and a replayed charge (409).

`make bench` measures req/s, which on a shared 2-core machine swings by a tenth from one run
to the next (seen here: the same build's check ratio 0.74x, 0.83x and 0.87x within an hour;
a plain Python loop's time moved by 15%). Instructions do not: valgrind's callgrind
counts the user-space instructions a process executes, the same for the same code and
inputs whatever else the machine is doing. This starts each app under gunicorn.conf.py
with one worker under callgrind, in the same configurations as `make bench` (the service:
JSON access log, JSON logs at INFO, Redis rate limits out of reach, DEBUG off), sends
warm-up requests, then N checks, N replays and N per-call usage posts over real sockets, and reads the worker's
counts between them (`callgrind_control --dump`). Kernel time (accept, send, close: the
same for both apps) is not in these counts, so their ratio is the upper bound of the CPU
ratio. About 5 minutes; needs `make bench` to have made the database once.

Run: .venv/bin/python bench/instructions.py   (BENCH_INSTRUCTIONS_N=100 requests per kind)
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # the same environments, database and API key as make bench

N = int(os.environ.get("BENCH_INSTRUCTIONS_N", "100"))
WARMUP = 20
# New charges need idempotency keys no earlier run, and not the other app, used (both share the database).
RUN = f"{time.time_ns():x}"
APPS = {
    "bare-drf": ("bench.reference_app:application", {"GUNICORN_ACCESS_LOG": ""}, 18321),
    "service": (
        "billing_site.wsgi:application",
        {
            "RATE_LIMIT_PER_KEY": "100000000/min",
            "RATE_LIMIT_PER_USER": "100000000/min",
            "GUNICORN_ACCESS_LOG": "-",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "REDIS_URL": bench.REDIS_URL,
        },
        18322,
    ),
}
KINDS = ("check", "charge", "replay", "usage")
PATHS = {
    "check": "/v1/billing/credits/check",
    "charge": "/v1/billing/charges",
    "replay": "/v1/billing/charges",
    "usage": "/v1/billing/litellm/usage",
}
# What each kind answers in both apps (a replay names the original charge).
STATUSES = {"check": 200, "charge": 201, "replay": 409, "usage": 201}


def body(kind: str, rng: random.Random, app: str) -> str:
    data: dict[str, object] = {
        "oauth_provider": "oauth:google",
        "external_id": f"bench-{rng.randint(1, bench.USERS)}@example.com",
    }
    if kind in ("charge", "replay"):  # the bodies bench/wrk/charge.lua and replay.lua send
        data |= {
            "amount_minor": 100,
            "currency": "USD",
            "description": "Agent interaction - bench",
            "idempotency_key": f"bench-{RUN}-{app}-{rng.getrandbits(64):016x}" if kind == "charge" else "bench-replay",
            "metadata": {"agent_id": "datum"},
        }
    elif kind == "usage":  # the body bench/wrk/usage.lua sends, for interactions the warm-up made
        n = rng.randint(1, 10)
        data |= {
            "external_id": f"bench-{n}@example.com",
            "interaction_id": f"bench-usage-{n}-1",
            "total_llm_calls": 1,
            "total_prompt_tokens": 1200,
            "total_completion_tokens": 340,
            "models_used": ["groq/llama-3.3-70b"],
            "actual_cost_cents": 0.0421,
            "duration_ms": 850,
            "error_count": 0,
            "fallback_count": 0,
        }
    return json.dumps(data)


def send(port: int, kind: str, key: str, n: int, rng: random.Random, app: str) -> None:
    path = PATHS[kind]
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.request("POST", path, body(kind, rng, app), {"Content-Type": "application/json", "X-API-Key": key})
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != STATUSES[kind]:
            raise RuntimeError(f"{kind}: HTTP {response.status}")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(2)
    raise RuntimeError(f"nothing listens on port {port}")


def worker_pid(proc: subprocess.Popen[bytes], timeout: float = 900) -> int:
    """The gunicorn worker's pid, once the master (slow under valgrind) has forked it."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = children.read_text().split()
        if pids:
            time.sleep(5)  # the worker loads the app before it answers
            return int(pids[0])
        time.sleep(1)
    raise RuntimeError("gunicorn forked no worker")


def dump_total(pid: int, label: str, out: Path) -> int:
    """Dump the worker's counts since its last dump; return their total."""
    subprocess.run(["callgrind_control", f"--dump={label}", str(pid)], check=True, capture_output=True)
    trigger = re.compile(rf"^desc: Trigger: .*\b{re.escape(label)}$", re.M)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in out.parent.glob(f"{out.name}.{pid}.*"):
            text = path.read_text(errors="replace")
            total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if trigger.search(text) and total:
                return int(total.group(1))
        time.sleep(0.5)
    raise RuntimeError(f"callgrind wrote no dump for {label}")


def measure(name: str, key: str, workdir: Path) -> dict[str, int]:
    app, extra, port = APPS[name]
    env = bench.service_env(GUNICORN_WORKERS="1", GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_TIMEOUT="900", **extra)
    out = workdir / name
    log = open(workdir / f"{name}.log", "wb")
    cmd = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}.%p"]
    proc = subprocess.Popen(
        [*cmd, bench.GUNICORN, "-c", str(bench.ROOT / "gunicorn.conf.py"), app],
        cwd=bench.ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        worker = worker_pid(proc)
        rng = random.Random(3)
        counts = {}
        for kind in KINDS:
            send(port, kind, key, WARMUP, rng, name)
            time.sleep(1)  # the log thread's last batch lands before the dump
            dump_total(worker, f"before-{kind}", out)
            send(port, kind, key, N, rng, name)
            time.sleep(1)
            counts[kind] = dump_total(worker, f"after-{kind}", out) // N
        return counts
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> None:
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (Debian's valgrind package)")
    key = bench.prepare_database()
    workdir = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    results = {name: measure(name, key, workdir) for name in APPS}
    print(f"Instructions per request (callgrind, one gunicorn worker, {N} requests per kind after {WARMUP}):")
    print("| kind | bare DRF | service | ratio |")
    print("|---|---:|---:|---:|")
    for kind in KINDS:
        ref, ours = results["bare-drf"][kind], results["service"][kind]
        print(f"| {kind} | {ref / 1000:,.0f} k | {ours / 1000:,.0f} k | {ours / ref:.2f}x |")
    print(f"(callgrind files in {workdir})")


if __name__ == "__main__":
    main()

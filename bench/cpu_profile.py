"""CPU per request of the service's own code, in-process, with each speed measure on and off.

Throughput on a loaded machine is noise; the CPU time one process spends per request
hardly moves with other load. This drives Django's WSGI handler directly (no gunicorn, no
sockets) in the production configuration (DEBUG off, JSON logs at INFO, Redis) against the
`make bench` database (run `make bench` once first), and prints microseconds of CPU per
request for each variant. Run: .venv/bin/python bench/cpu_profile.py [N]
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    DJANGO_SETTINGS_MODULE="billing_site.settings",
    DJANGO_SECRET_KEY="bench-only-secret-key",
    DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_bench"),
    REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
    RATE_LIMIT_PER_KEY="100000000/min",
    RATE_LIMIT_PER_USER="100000000/min",
    LOG_LEVEL="INFO",
    LOG_FORMAT="json",
)
import django  # noqa: E402

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.test import override_settings  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
USERS = int(os.environ.get("BENCH_USERS", "10000"))


def api_key() -> str:
    from accounts.models import ApiKey

    ApiKey.objects.filter(name="bench-cpu").delete()
    _, key = ApiKey.objects.create_key(name="bench-cpu", permissions="read,write")
    return key


KEY = api_key()
rng = random.Random(7)


def environ(path: str, body: dict) -> dict:
    raw = json.dumps(body).encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "CONTENT_LENGTH": str(len(raw)),
        "CONTENT_TYPE": "application/json",
        "HTTP_X_API_KEY": KEY,
    }


def check() -> dict:
    return {"oauth_provider": "oauth:google", "external_id": f"bench-{rng.randint(1, USERS)}@example.com"}


def replay() -> dict:
    return {
        **check(),
        "amount_minor": 100,
        "currency": "USD",
        "description": "Agent interaction - bench",
        "idempotency_key": "bench-replay",
        "metadata": {"agent_id": "datum"},
    }


counter = 0


def charge() -> dict:
    global counter
    counter += 1
    return {**replay(), "idempotency_key": f"cpu-{time.time_ns()}-{counter}"}


KINDS = {"check": ("/v1/billing/credits/check", check), "replay": ("/v1/billing/charges", replay)}
if os.environ.get("BENCH_CPU_CHARGES") == "1":
    KINDS["charge"] = ("/v1/billing/charges", charge)


def cpu_us(handler: WSGIHandler, path: str, body: object, n: int) -> float:
    statuses: set[str] = set()

    def start_response(status: str, headers: list) -> None:
        statuses.add(status[:3])

    started = time.process_time()
    for _ in range(n):
        b"".join(handler(environ(path, body()), start_response))
    assert statuses <= {"200", "201", "409"}, statuses
    return (time.process_time() - started) / n * 1e6


def old_allows(self: object, scope: str) -> bool:
    from accounts.models import SCOPE_RANK, Scope

    rank = SCOPE_RANK[Scope(scope)]
    return any(SCOPE_RANK.get(Scope(s), 0) >= rank for s in self.scopes if s in Scope.values)  # type: ignore[attr-defined]


def patches() -> dict[str, tuple[object, str, object]]:
    """Name -> (object, attribute, replacement): the speed measures that are code, not settings."""
    from accounts import auth

    return {
        "scopes": (auth.ApiPrincipal, "allows", old_allows),
    }


VARIANTS: list[tuple[str, dict[str, object], str | None]] = [
    ("as deployed (Redis, batched rate-limit counts, logs on a thread)", {}, None),
    ("rate-limit counts sent every request (RATE_LIMIT_BATCH=1)", {"RATE_LIMIT_BATCH": 1}, None),
    ("rate limits off", {"RATE_LIMIT_ENABLED": False}, None),
    ("no middleware at all", {"MIDDLEWARE": []}, None),
    ("scope check through Scope.values (before)", {}, "scopes"),
]


def main() -> None:
    from billing_site.ratelimit import reset_local_counters

    available = patches()
    originals = {name: getattr(obj, attr) for name, (obj, attr, _) in available.items()}
    best = {label: {kind: float("inf") for kind in KINDS} for label, _, _ in VARIANTS}
    rounds = int(os.environ.get("BENCH_CPU_ROUNDS", "5"))
    for _ in range(rounds):  # interleaved, best of the rounds: other load drifts between them
        for label, overrides, patch in VARIANTS:
            with override_settings(**overrides):
                reset_local_counters()
                for name, (obj, attr, replacement) in available.items():
                    setattr(obj, attr, replacement if name == patch else originals[name])
                handler = WSGIHandler()
                for kind, (path, body) in KINDS.items():
                    cpu_us(handler, path, body, 50)  # warm
                    best[label][kind] = min(best[label][kind], cpu_us(handler, path, body, N))
    for name, (obj, attr, _) in available.items():
        setattr(obj, attr, originals[name])
    print(f"| variant (CPU us per request, best of {rounds} rounds x {N}) | {' | '.join(KINDS)} |")
    print("|---|" + "---:|" * len(KINDS))
    for label, _, _ in VARIANTS:
        print(f"| {label} | {' | '.join(f'{best[label][k]:.0f}' for k in KINDS)} |")


if __name__ == "__main__":
    main()

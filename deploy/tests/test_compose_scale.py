"""docker-compose.scale.yml: two app instances behind HAProxy, PgBouncer in front of PostgreSQL."""

from __future__ import annotations

import time

import pytest

from deploy.tests.compose import Compose, charge_body, http

CHARGES = "/v1/billing/charges"


@pytest.fixture(scope="module")
def scaled(request):
    compose = Compose("docker-compose.scale.yml")
    start = time.monotonic()
    try:
        compose.run("up", "-d", "--remove-orphans", timeout=600)
        for service in ("app1", "app2"):
            compose.wait_health(service, "healthy", timeout=120)
        print(f"\nscale-out up: two healthy instances in {time.monotonic() - start:.0f} s")
        compose.key = compose.create_api_key("app1")
        yield compose
    finally:
        if request.session.testsfailed:
            print(compose.logs("haproxy")[-2000:], compose.logs("pgbouncer")[-2000:], compose.logs("app1")[-2000:])
        compose.run("down", "-v", "--remove-orphans", check=False)


def _served_by(compose: Compose, count: int = 20) -> set[str]:
    """Which instances HAProxy sent `count` requests to (it names each in X-Served-By)."""
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        for _ in range(count):
            status, headers, _ = http(f"{compose.url}/health")
            if status == 200:
                seen.add(headers.get("x-served-by"))
        time.sleep(0.5)
    return seen


def test_haproxy_spreads_requests_over_both_instances(scaled):
    assert _served_by(scaled) == {"app1", "app2"}


def test_a_charge_through_one_instance_replays_as_409_through_the_other(scaled):
    headers = {"X-API-Key": scaled.key}
    answers = [
        http(f"{scaled.url}{CHARGES}", method="POST", body=charge_body("scale-1"), headers=headers) for _ in range(4)
    ]
    assert [status for status, _, _ in answers] == [201, 409, 409, 409], answers
    assert {headers["x-served-by"] for _, headers, _ in answers} == {"app1", "app2"}
    assert len({body["charge_id"] for _, _, body in answers}) == 1


def test_the_instances_talk_to_pgbouncer_with_the_server_side_timeouts(scaled):
    out = scaled.exec(
        "app2",
        "python",
        "manage.py",
        "shell",
        "-c",
        "from django.db import connection as c\n"
        "cur = c.cursor(); cur.execute('SHOW statement_timeout'); timeout = cur.fetchone()[0]\n"
        "cur.execute('SHOW lock_timeout'); lock = cur.fetchone()[0]\n"
        "print(c.settings_dict['PORT'], c.settings_dict['DISABLE_SERVER_SIDE_CURSORS'], timeout, lock)",
    )
    assert out.split()[-4:] == ["6432", "True", "5s", "5s"]

"""docker-compose.yml as an operator runs it: the image built from this tree, PostgreSQL, Redis.

scripts/test_deploy.sh builds the image once (`ciris-billing`, the name the compose file
gives it), so `up` here builds nothing. The tests run in file order on one running stack.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest

from deploy.tests.compose import Compose, charge_body, http

CHECK = "/v1/billing/credits/check"
CHARGES = "/v1/billing/charges"


@pytest.fixture(scope="module")
def stack(request):
    compose = Compose("docker-compose.yml")
    compose.run("down", "-v", "--remove-orphans", check=False)
    start = time.monotonic()
    try:
        compose.run("up", "-d", timeout=600)  # returns once migrate exited 0 and the app started
        compose.wait_health("app", "healthy", timeout=120)
        print(f"\ncompose up: migrate and a healthy app in {time.monotonic() - start:.0f} s")
        compose.key = compose.create_api_key()
        yield compose
    finally:
        if request.session.testsfailed:
            print(compose.logs("app")[-3000:])
        # The volume stays for test_compose_scale.py (the same database, already migrated).
        compose.run("down", "--remove-orphans", check=False)


def test_migrate_ran_once_and_exited_0(stack):
    assert stack.inspect("migrate")["State"]["ExitCode"] == 0
    assert "Applying ledger.0001_initial... OK" in stack.logs("migrate")
    stack.exec("app", "python", "manage.py", "migrate", "--check")  # nothing left to apply


def test_the_app_is_healthy_by_its_healthcheck_and_runs_as_a_non_root_user(stack):
    state = stack.inspect("app")
    assert state["State"]["Health"]["Status"] == "healthy"
    assert state["Config"]["Healthcheck"]["Test"] == ["CMD", "python", "-m", "billing_site.healthcheck"]
    assert state["Config"]["User"] == "10001"
    # gunicorn's master (PID 1) and its workers: no process in the container runs as root.
    uids = stack.exec("app", "sh", "-c", "grep -h '^Uid:' /proc/[0-9]*/status").split()
    assert uids and {uid for uid in uids if uid.isdigit()} == {"10001"}


def test_a_check_a_charge_and_its_replay_answer(stack):
    headers = {"X-API-Key": stack.key}
    status, _, body = http(f"{stack.url}{CHECK}", method="POST", body=charge_body("-"), headers=headers)
    assert (status, body["has_credit"], body["free_uses_remaining"]) == (200, True, 3)

    status, _, first = http(f"{stack.url}{CHARGES}", method="POST", body=charge_body("deploy-1"), headers=headers)
    assert (status, first["paid_with_free_use"]) == (201, True), first
    status, _, replay = http(f"{stack.url}{CHARGES}", method="POST", body=charge_body("deploy-1"), headers=headers)
    assert (status, replay["code"], replay["charge_id"]) == (409, "duplicate_idempotency_key", first["charge_id"])


def test_the_docs_and_the_admin_login_answer_with_their_collected_static_files(stack):
    assets = set()
    for path in ("/docs", "/redoc", "/admin/login/"):
        status, _, page = http(f"{stack.url}{path}")
        assert status == 200, (path, page[:300])
        assets.update(re.findall(r'(?:src|href)="(/static/[^"?#]+)', page))
    assert any(re.search(r"/admin/css/base\.[0-9a-f]{12}\.css$", asset) for asset in assets), assets
    for asset in assets:
        assert http(f"{stack.url}{asset}")[0] == 200, asset


def test_metrics_merge_the_workers_files_from_the_multiprocess_directory(stack):
    status, _, text = http(f"{stack.url}/metrics", headers={"Authorization": "Bearer deploy-test-metrics"})
    assert status == 200
    assert re.search(r'billing_charges_total\{result="free"\} [1-9]', text), text[:2000]
    files = stack.exec("app", "ls", "/tmp/billing-metrics").split()
    assert any(name.endswith(".db") for name in files), files


def test_a_postgres_restart_turns_the_app_unhealthy_then_healthy_without_restarting_it(stack):
    before = stack.inspect("app")["State"]
    stack.run("stop", "postgres")
    try:
        took = stack.wait_health("app", "unhealthy", timeout=60)
        status, headers, body = http(
            f"{stack.url}{CHECK}", method="POST", body=charge_body("-"), headers={"X-API-Key": stack.key}
        )
        assert (status, body["code"], headers.get("retry-after")) == (503, "service_unavailable", "5"), body
    finally:
        stack.run("start", "postgres")
    back = stack.wait_health("app", "healthy", timeout=90)
    print(f"\npostgres stopped: app unhealthy after {took:.0f} s; started again: healthy after {back:.0f} s")

    status, _, body = http(
        f"{stack.url}{CHECK}", method="POST", body=charge_body("-"), headers={"X-API-Key": stack.key}
    )
    assert status == 200, body
    after = stack.inspect("app")["State"]
    assert (after["StartedAt"], after["Pid"]) == (before["StartedAt"], before["Pid"])
    assert stack.inspect("app")["RestartCount"] == 0


def _psql(stack: Compose, sql: str) -> str:
    return stack.exec("postgres", "psql", "-U", "billing", "-d", "billing", "-Atc", sql).strip()


def _wait_for(stack: Compose, sql: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while _psql(stack, sql) in ("", "0"):
        assert time.monotonic() < deadline, f"never true: {sql}"
        time.sleep(0.2)


def test_compose_stop_lets_an_in_flight_charge_finish(stack):
    """A charge waiting on its account's row lock when `docker compose stop` sends SIGTERM still answers 201."""
    headers = {"X-API-Key": stack.key}
    user = "in-flight@example.com"
    assert http(f"{stack.url}{CHECK}", method="POST", body=charge_body("-", user), headers=headers)[0] == 200
    lock = subprocess.Popen(
        [*stack.command("exec", "-T", "postgres"), "psql", "-U", "billing", "-d", "billing", "-c",
         f"BEGIN; SELECT 1 FROM accounts_account WHERE external_id = '{user}' FOR UPDATE; SELECT pg_sleep(4); COMMIT;"],
        env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    result: dict[str, tuple] = {}
    try:
        _wait_for(
            stack, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' AND wait_event = 'PgSleep'"
        )
        charge = threading.Thread(
            target=lambda: result.update(
                answer=http(
                    f"{stack.url}{CHARGES}", method="POST", body=charge_body("in-flight", user), headers=headers
                )
            )
        )
        charge.start()
        _wait_for(stack, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        start = time.monotonic()
        stack.run("stop", "app")
        stopped_in = time.monotonic() - start
        charge.join(timeout=30)
    finally:
        lock.wait(timeout=30)

    status, _, body = result["answer"]
    assert status == 201, body
    state = stack.inspect("app")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)  # gunicorn exited by itself, not SIGKILLed
    assert stopped_in < 30
    print(f"\ndocker compose stop: the in-flight charge answered {status}, the app exited 0 in {stopped_in:.1f} s")

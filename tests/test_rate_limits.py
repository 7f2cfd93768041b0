"""Rate limits per API key and per end user: 429 with Retry-After, counted in batches to Redis."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from django.test import override_settings

from billing_site import ratelimit
from tests.conftest import charge_body
from tests.live import unused_port

pytestmark = pytest.mark.django_db

CHECK = "/v1/billing/credits/check"


@override_settings(RATE_LIMIT_PER_USER="2/min", RATE_LIMIT_PER_KEY="1000/min")
def test_an_end_user_over_the_rate_gets_429_with_retry_after(api, user):
    for _ in range(2):
        assert api.post(CHECK, user, format="json").status_code == 200

    response = api.post(CHECK, user, format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert response.json()["detail"].startswith("Request was throttled")
    assert 1 <= int(response["Retry-After"]) <= 60


@override_settings(RATE_LIMIT_PER_USER="2/min", RATE_LIMIT_PER_KEY="1000/min")
def test_other_users_of_the_same_key_are_not_held_back(api, user):
    for _ in range(3):
        api.post(CHECK, user, format="json")

    other = {**user, "external_id": "someone-else@example.com"}
    assert api.post(CHECK, other, format="json").status_code == 200
    # The same identity under another tenant is another end user.
    assert api.post(CHECK, {**user, "tenant_id": "acme"}, format="json").status_code == 200


@override_settings(RATE_LIMIT_PER_USER="1000/min", RATE_LIMIT_PER_KEY="3/min")
def test_a_key_over_its_rate_gets_429_whoever_the_user(api, make_client, user):
    for i in range(3):
        assert api.post(CHECK, {**user, "external_id": f"u{i}"}, format="json").status_code == 200

    assert api.post(CHECK, {**user, "external_id": "u9"}, format="json").status_code == 429
    assert api.post("/v1/billing/charges", charge_body(user, "k"), format="json").status_code == 429
    assert make_client().post(CHECK, user, format="json").status_code == 200  # another key


@override_settings(RATE_LIMIT_ENABLED=False, RATE_LIMIT_PER_USER="1/min")
def test_rate_limits_can_be_switched_off(api, user):
    for _ in range(3):
        assert api.post(CHECK, user, format="json").status_code == 200


@override_settings(RATE_LIMIT_PER_USER="1/min")
def test_a_throttled_request_changes_nothing(api, user):
    assert api.post("/v1/billing/charges", charge_body(user, "k1"), format="json").status_code == 201
    assert api.post("/v1/billing/charges", charge_body(user, "k2"), format="json").status_code == 429

    from charges.models import Charge

    assert Charge.objects.filter(account__external_id=user["external_id"]).count() == 1


@pytest.mark.parametrize(("rate", "parsed"), [("6000/min", (6000, 60)), ("5/s", (5, 1)), ("10/hour", (10, 3600))])
def test_rates_are_drf_rate_strings(rate, parsed):
    assert ratelimit.parse_rate(rate) == parsed
    assert ratelimit.parse_rate("") is None


@pytest.fixture(scope="module")
def redis_url():
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = unused_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/9"
    proc.terminate()
    proc.wait(timeout=10)


def redis_caches(url: str) -> dict:
    """The production cache settings (billing_site.settings) on another Redis."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True},
        }
    }


@pytest.fixture
def round_trips(monkeypatch):
    """Every command batch written to any Redis connection."""
    import redis.connection

    sends = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sends.append(command)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sends


@override_settings(RATE_LIMIT_BATCH=20, RATE_LIMIT_FLUSH_MS=60_000)
def test_with_redis_forty_requests_cost_two_round_trips_for_both_counters_and_keys_expire(redis_url, round_trips):
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    counters = ratelimit.WindowCounters(client=lambda: client)
    counters.hit([("rl:test:a", 61), ("rl:test:b", 61)])  # the first hit is sent at once
    round_trips.clear()  # the connection's and the script's own set-up

    counts = [counters.hit([("rl:test:a", 61), ("rl:test:b", 61)]) for _ in range(40)]

    assert counts[-1] == [41, 41]
    assert len(round_trips) == 2  # the 20th and the 40th pending hit: both counters each time
    assert int(client.get("rl:test:a")) == 41
    assert 0 < client.ttl("rl:test:a") <= 61


def test_two_processes_sharing_one_redis_hold_the_limit_within_the_stated_bound(redis_url):
    """Two counter instances (two workers) on one Redis: at least the limit, at most limit + 2*P*B."""
    import random

    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    limit, batch, processes = 100, 5, 2
    workers = [
        ratelimit.WindowCounters(client=lambda: client, batch=lambda: batch, flush_seconds=lambda: 60.0)
        for _ in range(processes)
    ]
    rng = random.Random(12)
    admitted = 0
    for _ in range(1000):
        (count,) = rng.choice(workers).hit([("rl:test:shared", 61)])
        admitted += count <= limit

    assert limit <= admitted <= limit + 2 * processes * batch
    # Each alone is exact: one process never lets more than the limit through by itself.
    solo = ratelimit.WindowCounters(client=lambda: client, batch=lambda: batch, flush_seconds=lambda: 60.0)
    assert sum(solo.hit([("rl:test:solo", 61)])[0] <= limit for _ in range(300)) == limit


def test_with_redis_the_api_answers_429_over_the_rate(redis_url, api, user):
    with override_settings(CACHES=redis_caches(redis_url), RATE_LIMIT_PER_USER="2/min", RATE_LIMIT_PER_KEY="1000/min"):
        from django.core.cache import cache

        cache.clear()
        ratelimit.reset_local_counters()

        statuses = [api.post(CHECK, user, format="json").status_code for _ in range(3)]

        assert statuses == [200, 200, 429]
        cache.clear()


def test_a_redis_outage_lets_requests_through(api, user):
    caches = redis_caches(f"redis://127.0.0.1:{unused_port()}/9")
    with override_settings(CACHES=caches, RATE_LIMIT_PER_USER="1/min", RATE_LIMIT_BATCH=1):
        ratelimit.reset_local_counters()

        statuses = [api.post(CHECK, user, format="json").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


@override_settings(RATE_LIMIT_AUTH_FAILURES="3/min")
def test_a_client_guessing_keys_gets_429_but_valid_keys_from_its_address_still_work(make_client, user):
    from rest_framework.test import APIClient

    guesser = APIClient()
    statuses = []
    for i in range(5):
        guesser.credentials(HTTP_X_API_KEY=f"Guess00{i}.secret")
        statuses.append(guesser.post(CHECK, user, format="json"))

    assert [r.status_code for r in statuses] == [401, 401, 401, 429, 429]
    assert int(statuses[-1]["Retry-After"]) >= 1
    # Another caller behind the same address (a proxy, a NAT) with a good key is not held back.
    assert make_client().post(CHECK, user, format="json").status_code == 200


@override_settings(RATE_LIMIT_PER_USER="2/min", RATE_LIMIT_PER_KEY="1000/min")
def test_padding_the_identity_with_spaces_does_not_escape_the_per_user_limit(api, user):
    padded = [
        user,
        {**user, "external_id": " " + user["external_id"]},
        {**user, "external_id": user["external_id"] + "  "},
    ]

    statuses = [api.post(CHECK, body, format="json").status_code for body in padded]

    assert statuses == [200, 200, 429]


@override_settings(API_KEYS_REQUIRED=False, RATE_LIMIT_PER_KEY="2/min", RATE_LIMIT_PER_USER="1000/min")
def test_without_keys_the_limit_follows_the_socket_peer_not_x_forwarded_for(user):
    from rest_framework.test import APIClient

    client = APIClient()
    statuses = [
        client.post(CHECK, user, format="json", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(3)
    ]

    assert statuses == [200, 200, 429]


def test_behind_a_trusted_proxy_the_limit_follows_the_forwarded_client(user, settings):
    from rest_framework.test import APIClient

    settings.API_KEYS_REQUIRED = False
    settings.RATE_LIMIT_PER_KEY = "2/min"
    settings.RATE_LIMIT_PER_USER = "1000/min"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient()
    statuses = [
        client.post(CHECK, user, format="json", HTTP_X_FORWARDED_FOR=f"10.0.0.{i % 2}").status_code for i in range(5)
    ]

    assert statuses == [200, 200, 200, 200, 429]

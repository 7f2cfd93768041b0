"""A revoked API key stops within the documented bound, in every interleaving.

The race: request R misses the caches and reads the key's row; the revocation commits and
drops the cached copies; R then writes the row it read (not revoked) into the shared cache.
Before the change stamp, that copy served the revoked key for API_KEY_CACHE_SECONDS more.
The interleaving is forced with events: R pauses right after its read until the revocation
has committed (and its after-commit cache work has run).
"""

from __future__ import annotations

import threading
import time

import pytest
from django.core.cache import cache
from django.db import connections, transaction
from rest_framework.test import APIClient

from accounts import auth
from accounts.models import ApiKey

CHECK = "/v1/billing/credits/check"
REDIS_DB7 = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/7"}}


@pytest.fixture(params=["local-memory cache", "redis"])
def shared_cache(request, settings):
    """Both shared caches the service runs on (Redis on its test database, 7)."""
    if request.param == "redis":
        settings.CACHES = REDIS_DB7
    cache.clear()
    yield request.param
    cache.clear()


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


def _revoke(api_key: ApiKey) -> None:
    """As the admin's revoke action does: save in a transaction; the signal runs on commit."""
    with transaction.atomic():
        api_key.revoked = True
        api_key.save(update_fields=["revoked"])


def _race(monkeypatch, key: str, api_key: ApiKey, *, stall_after_revoke: float = 0.0) -> int:
    """Request R reads the row before the revocation commits and caches it after; R's status."""
    read_done, revoked = threading.Event(), threading.Event()
    real_read = auth._read_key_row

    def paused_read(prefix: str):
        row = real_read(prefix)
        if threading.current_thread().name == "R":
            read_done.set()
            assert revoked.wait(10)
            time.sleep(stall_after_revoke)
        return row

    monkeypatch.setattr(auth, "_read_key_row", paused_read)
    statuses: list[int] = []

    def request() -> None:
        try:
            statuses.append(
                _client(key).post(CHECK, {"oauth_provider": "p", "external_id": "r"}, format="json").status_code
            )
        finally:
            connections.close_all()

    r = threading.Thread(target=request, name="R")
    r.start()
    assert read_done.wait(10)
    _revoke(api_key)
    revoked.set()
    r.join(20)
    return statuses[0]


@pytest.mark.django_db(transaction=True)
def test_a_row_read_before_the_revocation_commits_never_revives_the_key(monkeypatch, shared_cache, user):
    api_key, key = ApiKey.objects.create_key(name="raced", permissions="read")
    cache.clear()  # a key made long ago: its creation's stamp has expired

    assert _race(monkeypatch, key, api_key) == 200  # R began before the revocation: it may pass

    response = _client(key).post(CHECK, user, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "api_key_revoked"


@pytest.mark.django_db(transaction=True)
def test_a_stale_row_cached_late_expires_before_the_change_stamp_does(monkeypatch, shared_cache, user, settings):
    settings.API_KEY_CACHE_SECONDS = 2
    api_key, key = ApiKey.objects.create_key(name="slow", permissions="read")
    cache.clear()  # a key made long ago: its creation's stamp has expired
    # R stalls longer than the stamp's margin between its read and its cache write.
    _race(monkeypatch, key, api_key, stall_after_revoke=2.5)

    time.sleep(settings.API_KEY_CACHE_SECONDS - 0.3)  # past the stamp, before a 2 s copy expires
    response = _client(key).post(CHECK, user, format="json")

    assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_cached_key_still_costs_no_query_and_a_revocation_still_works(shared_cache, user, django_assert_num_queries):
    api_key, key = ApiKey.objects.create_key(name="hot", permissions="read,write")
    client = _client(key)
    client.post(CHECK, user, format="json")  # caches the key's row

    with django_assert_num_queries(0):
        assert client.post("/v1/billing/charges", {}, format="json").status_code == 422

    _revoke(api_key)
    assert client.post(CHECK, user, format="json").status_code == 401

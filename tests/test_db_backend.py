"""The PostgreSQL backend (billing_site.db): timestamps come back exactly as Django's own loader gives them."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader

from accounts.models import Account
from billing_site.db.base import TIMESTAMPTZ_OID, UtcTimestamptzLoader
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

MOMENTS = [
    datetime.datetime(2026, 12, 1, 11, 23, 7, 518431, tzinfo=datetime.UTC),
    datetime.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
    datetime.datetime(2024, 2, 29, 0, 0, tzinfo=datetime.UTC),
    datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))),
]


def test_the_connection_loads_timestamptz_with_psycopg_s_c_loader():
    connection.ensure_connection()

    assert connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, 0) is UtcTimestamptzLoader


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_a_saved_timestamp_reads_back_as_the_same_utc_datetime(moment):
    account = AccountFactory()
    Account.objects.filter(pk=account.pk).update(created_at=moment)

    loaded = Account.objects.get(pk=account.pk).created_at

    assert loaded == moment
    assert loaded.tzinfo is datetime.UTC
    assert loaded.isoformat() == moment.astimezone(datetime.UTC).isoformat()


def test_every_value_equals_what_django_s_loader_gives():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::timestamptz, %s::timestamptz, %s::timestamptz, %s::timestamptz, "
            "'infinity'::timestamptz < 'infinity'::timestamptz, NULL::timestamptz",
            MOMENTS,
        )
        ours = cursor.fetchone()
        django_s = type("DjangoUtcLoader", (BaseTzLoader,), {"timezone": datetime.UTC})
        cursor.cursor.adapters.register_loader("timestamptz", django_s)
        cursor.execute(
            "SELECT %s::timestamptz, %s::timestamptz, %s::timestamptz, %s::timestamptz, "
            "'infinity'::timestamptz < 'infinity'::timestamptz, NULL::timestamptz",
            MOMENTS,
        )
        theirs = cursor.fetchone()

    assert ours == theirs
    assert [value.tzinfo for value in ours[:4]] == [datetime.UTC] * 4


def test_a_session_in_another_zone_still_reads_the_same_instant():
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'America/New_York'")
        try:
            cursor.execute("SELECT %s::timestamptz", [MOMENTS[0]])
            (value,) = cursor.fetchone()
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")

    assert value == MOMENTS[0]

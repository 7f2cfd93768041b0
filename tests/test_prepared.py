"""A prepared hot lookup answers exactly what the same QuerySet answers through the ORM."""

from __future__ import annotations

import pytest
from django.db.models import F

from accounts.models import Account
from billing_site.prepared import PreparedQuery
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

BY_PROVIDER = PreparedQuery(
    lambda provider, external_id: (
        Account.objects.filter(oauth_provider=provider, external_id=external_id)
        .order_by()
        .values_list("id", "external_id", "balance_minor", "created_at")
    ),
    ["provider", "external_id"],
)


def test_it_runs_with_each_call_s_values():
    alice = AccountFactory(external_id="alice' OR 1=1 --", balance_minor=5)
    AccountFactory(external_id="bob")

    rows = BY_PROVIDER.rows(provider="oauth:google", external_id="alice' OR 1=1 --")

    assert rows == list(
        Account.objects.filter(pk=alice.pk).values_list("id", "external_id", "balance_minor", "created_at")
    )
    assert BY_PROVIDER.rows(provider="oauth:google", external_id="nobody") == []
    assert [r[1] for r in BY_PROVIDER.rows(provider="oauth:google", external_id="bob")] == ["bob"]


def test_it_refuses_a_query_it_cannot_prepare():
    annotated = PreparedQuery(
        lambda provider: (
            Account.objects.filter(oauth_provider=provider).annotate(b=F("balance_minor")).values_list("b")
        ),
        ["provider"],
    )
    unused = PreparedQuery(lambda provider: Account.objects.values_list("id"), ["provider"])

    with pytest.raises(ValueError):
        annotated.rows(provider="x")
    with pytest.raises(ValueError):
        unused.rows(provider="x")

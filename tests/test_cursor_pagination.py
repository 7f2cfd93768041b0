"""The shared cursor pagination (billing_site.pagination): any forged cursor is a clean 404.

Every cursor-paginated list (an account's ledger, its usage records) uses one class; the
cursor is client input, base64 of a query string whose position goes into a filter.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from billing_site.pagination import NewestFirstCursorPagination
from ledger.models import LedgerEntry
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

FORGED_POSITIONS = [
    "p=%C2%B2",  # a superscript two: str.isdigit() says yes, int() says no
    "p=%D9%A3",  # an Arabic-Indic three
    "p=abc",
    "p=",
    "p=1e5",
    "p=%00",
    "p=1%002",
    "p=99999999999999999999999999",  # past a bigint
    "p=-99999999999999999999999999",
    "r=1&p=abc",
    "o=-1",
    "o=%C2%B2",
    "r=%C2%B2",
]


def _cursor(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


def test_the_reported_superscript_cursor_is_a_404_json(api, user):
    account = funded_account(user)

    response = api.get(f"/v1/billing/accounts/{account.pk}/transactions?cursor=cD0lQzIlQjI%3D")

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor", "code": "not_found"}


@pytest.mark.parametrize("raw", FORGED_POSITIONS)
def test_a_forged_ledger_cursor_is_a_404_never_a_500(api, user, raw):
    account = funded_account(user)

    response = api.get(f"/v1/billing/accounts/{account.pk}/transactions", {"cursor": _cursor(raw)})

    assert response.status_code == 404, raw
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("cursor", ["%FF%FE", "not base64!", quote("é"), "cD0x" * 300])
def test_a_cursor_that_is_not_base64_ascii_is_a_404(api, user, cursor):
    account = funded_account(user)

    response = api.get(f"/v1/billing/accounts/{account.pk}/transactions?cursor={cursor}")

    assert response.status_code in (200, 404), cursor
    if response.status_code == 404:
        assert response.json()["code"] == "not_found"


def test_a_position_beyond_the_newest_entry_pages_on_normally(api, user):
    account = funded_account(user, uses=2)
    api.post("/v1/billing/charges", charge_body(user, "one"), format="json")
    newest = LedgerEntry.objects.filter(account=account).order_by("-id").first()

    response = api.get(f"/v1/billing/accounts/{account.pk}/transactions", {"cursor": _cursor(f"p={newest.pk + 1000}")})

    assert response.status_code == 200
    assert response.json()["results"][0]["entry_id"] == newest.pk


class _ByCreatedAt(NewestFirstCursorPagination):
    ordering = "-created_at"


@pytest.mark.parametrize("raw", ["p=%C2%B2", "p=2026-13-45", "p=%00", "p=yesterday"])
def test_a_list_ordered_by_time_refuses_a_forged_position_too(user, raw):
    funded_account(user, uses=1)
    request = Request(APIRequestFactory().get("/", {"cursor": _cursor(raw)}))

    with pytest.raises(NotFound):
        list(_ByCreatedAt().paginate_queryset(LedgerEntry.objects.all(), request))


def test_a_list_ordered_by_time_pages_with_its_own_cursors(api, user):
    account = funded_account(user, uses=5)
    for i in range(3):
        api.post("/v1/billing/charges", charge_body(user, f"c{i}"), format="json")
    expected = list(LedgerEntry.objects.filter(account=account).order_by("-created_at").values_list("pk", flat=True))
    pagination = _ByCreatedAt()
    pagination.page_size = 2

    seen, url = [], "/"
    while url:
        page = pagination.paginate_queryset(
            LedgerEntry.objects.filter(account=account), Request(APIRequestFactory().get(url))
        )
        seen += [entry.pk for entry in page]
        url = pagination.get_next_link()

    assert len(expected) >= 4
    assert seen == expected

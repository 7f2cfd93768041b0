"""The free allowance of a tool: initial on first use, a daily top-up once per UTC day
(frozen clock), never above the cap; staff grants; products seeded as data."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
import time_machine
from django.apps import apps

from accounts.identity import Identity
from accounts.models import Account, AccountStatus
from accounts.services import account_set_status
from billing_site.errors import InvalidOperation
from ledger.models import EntryKind, LedgerEntry
from tests.factories import AccountFactory, tool_product
from tools.errors import ToolCreditsExhausted
from tools.models import ToolAllowance, ToolProduct
from tools.services import tool_allowance_grant, tool_charge_create

pytestmark = pytest.mark.django_db

DAY_ONE = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
DAY_TWO = datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC)
DAY_THREE = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)

ALICE = Identity(oauth_provider="oauth:google", external_id="alice@example.com")


@pytest.fixture
def web_search(db) -> ToolProduct:
    return tool_product("web_search")  # 10 free, 3 a day, cap 13


def charge(key: str, product_type: str = "web_search") -> object:
    return tool_charge_create(identity=ALICE, product_type=product_type, idempotency_key=key, actor="test")


def allowance() -> ToolAllowance:
    return ToolAllowance.objects.get(account__external_id=ALICE.external_id)


def test_the_top_up_comes_once_on_the_first_use_of_a_new_utc_day(web_search):
    with time_machine.travel(DAY_ONE, tick=False):
        for i in range(4):
            charge(f"d1-{i}")
    assert allowance().free_remaining == 6
    with time_machine.travel(DAY_TWO, tick=False):
        charge("d2-0")
        charge("d2-1")

    assert allowance().free_remaining == 6 + 3 - 2
    daily = LedgerEntry.objects.filter(kind=EntryKind.TOOL_GRANT, details__source="daily")
    assert [(e.details["free_delta"], e.details["free_after"]) for e in daily] == [(3, 9)]


def test_the_top_up_never_takes_the_allowance_above_the_cap(web_search):
    with time_machine.travel(DAY_ONE, tick=False):
        charge("d1")  # 9 left
    with time_machine.travel(DAY_TWO, tick=False):
        charge("d2")  # +3 = 12, then 11
    with time_machine.travel(DAY_THREE, tick=False):
        charge("d3")  # +2 (cap 13), then 12

    assert allowance().free_remaining == 12
    deltas = [e.details["free_delta"] for e in LedgerEntry.objects.filter(kind=EntryKind.TOOL_GRANT).order_by("id")]
    assert deltas == [10, 3, 2]


def test_an_allowance_at_or_above_the_cap_gets_no_top_up_and_keeps_a_staff_grant(web_search):
    with time_machine.travel(DAY_ONE, tick=False):
        charge("d1")
        account = Account.objects.get(external_id=ALICE.external_id)
        tool_allowance_grant(
            account_id=account.pk,
            product=web_search,
            free_uses=20,
            reason="apology",
            actor="staff:s",
            idempotency_key="g",
        )
    with time_machine.travel(DAY_TWO, tick=False):
        charge("d2")

    assert allowance().free_remaining == 9 + 20 - 1
    assert not LedgerEntry.objects.filter(details__source="daily").exists()


def test_skipped_days_add_one_top_up_not_one_per_day(web_search):
    with time_machine.travel(DAY_ONE, tick=False):
        for i in range(10):
            charge(f"d1-{i}")
    with time_machine.travel(datetime(2026, 4, 1, tzinfo=UTC), tick=False):
        charge("later")

    assert allowance().free_remaining == 2


def test_the_first_use_grants_the_initial_allowance_once(web_search):
    charge("a")
    charge("b")

    initial = LedgerEntry.objects.filter(kind=EntryKind.TOOL_GRANT, details__source="initial")
    assert [e.details["free_delta"] for e in initial] == [10]
    assert initial.get().balance_delta_minor == 0 and initial.get().free_uses_delta == 0


def test_a_refused_charge_leaves_no_allowance_or_ledger_entry_behind(db):
    tool_product("web_search", free_initial=0, free_daily_topup=0, free_cap=0)

    with pytest.raises(ToolCreditsExhausted):
        charge("a")

    assert not ToolAllowance.objects.exists()
    assert not LedgerEntry.objects.filter(kind__in=[EntryKind.TOOL_GRANT, EntryKind.TOOL_CHARGE]).exists()


def test_a_staff_grant_is_idempotent_on_its_key_and_recorded(web_search):
    account = AccountFactory()

    first = tool_allowance_grant(
        account_id=account.pk, product=web_search, free_uses=5, reason="support", actor="staff:s", idempotency_key="k"
    )
    again = tool_allowance_grant(
        account_id=account.pk, product=web_search, free_uses=5, reason="support", actor="staff:s", idempotency_key="k"
    )

    (entry, created), (again_entry, again_created) = first, again
    assert created and not again_created and again_entry == entry
    assert entry.kind == EntryKind.TOOL_GRANT
    assert entry.details == {"product": "web_search", "source": "staff", "free_delta": 5, "free_after": 15}
    assert ToolAllowance.objects.get(account=account).free_remaining == 15


def test_a_closed_account_gets_no_tool_grant(web_search):
    account = AccountFactory()
    account_set_status(account_id=account.pk, status=AccountStatus.CLOSED, reason="gone", actor="test")

    with pytest.raises(InvalidOperation):
        tool_allowance_grant(
            account_id=account.pk, product=web_search, free_uses=5, reason="x", actor="staff:s", idempotency_key="k"
        )


def test_the_migration_seeds_web_search_with_the_originals_allowance(db):
    ToolProduct.objects.all().delete()
    seed = importlib.import_module("tools.migrations.0002_seed_web_search")

    seed.seed_web_search(apps, None)
    seed.seed_web_search(apps, None)

    product = ToolProduct.objects.get()
    assert (product.product_type, product.free_initial, product.free_daily_topup, product.free_cap) == (
        "web_search",
        10,
        3,
        13,
    )
    assert product.price_minor is None and product.active


def test_free_tool_uses_granted_are_counted_by_source_once_committed(web_search, django_capture_on_commit_callbacks):
    from prometheus_client import REGISTRY

    def granted() -> float:
        labels = {"product": "web_search", "source": "initial"}
        return REGISTRY.get_sample_value("billing_tool_free_uses_granted_total", labels) or 0

    before = granted()
    with django_capture_on_commit_callbacks(execute=True):
        charge("a")
        charge("b")

    assert granted() - before == 10

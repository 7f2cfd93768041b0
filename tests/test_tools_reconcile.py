"""reconcile proves every tool allowance from the ledger: grants minus free uses, and uses."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from tests.factories import funded_account, tool_product
from tools.models import ToolAllowance
from tools.reconcile import check_tool_allowances

pytestmark = pytest.mark.django_db


@pytest.fixture
def searched(api, user):
    tool_product("web_search", price_minor=50)
    tool_product("image_gen", free_initial=1, free_cap=1)
    funded_account(user, uses=2)
    for i in range(12):  # 10 free, then 2 paid
        api.post("/v1/tools/charge", {**user, "product_type": "web_search", "idempotency_key": f"s-{i}"}, format="json")
    api.post("/v1/tools/charge", {**user, "product_type": "image_gen", "idempotency_key": "i-1"}, format="json")


def test_allowances_used_through_the_api_reconcile_cleanly(searched):
    assert check_tool_allowances() == []
    out = StringIO()
    call_command("reconcile", stdout=out)
    assert "no discrepancies" in out.getvalue()


def test_an_allowance_changed_outside_the_services_is_reported(searched):
    ToolAllowance.objects.filter(product__product_type="web_search").update(free_remaining=F("free_remaining") + 5)
    ToolAllowance.objects.filter(product__product_type="image_gen").update(total_uses=7)

    found = check_tool_allowances()

    assert sorted((d.check, d.subject.split()[0]) for d in found) == [
        ("tool_allowance", "image_gen"),
        ("tool_allowance", "web_search"),
    ]
    details = " ".join(d.detail for d in found)
    assert "free uses 5 but its ledger records 0" in details
    assert "total uses 7 but its ledger has 1 tool charges" in details
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile", stdout=out)
    assert "[tool_allowance]" in out.getvalue()

"""The check and charge answers are built directly; they match their documented serializers."""

from __future__ import annotations

import pytest

from accounts.models import AccountStatus
from accounts.selectors import credit_status
from accounts.serializers import CreditCheckOut, credit_check_out
from accounts.services import account_set_status
from charges.models import Charge
from charges.serializers import ChargeOut, charge_out
from tests.conftest import charge_body
from tests.factories import funded_account

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("state", ["free", "paid", "short", "empty", "suspended", "daily"])
def test_the_check_answer_matches_its_serializer(user, settings, state):
    if state == "daily":
        settings.BILLING_DAILY_FREE_USES = 4
    account = {
        "free": lambda: funded_account(user),
        "paid": lambda: funded_account(user, uses=5, free_uses=0),
        "short": lambda: funded_account(user, free_uses=0),
        "empty": lambda: funded_account(user, free_uses=0),
        "suspended": lambda: funded_account(user, uses=1),
        "daily": lambda: funded_account(user, uses=1),
    }[state]()
    if state == "suspended":
        account = account_set_status(account_id=account.pk, status=AccountStatus.SUSPENDED, reason="t", actor="t")
    status = credit_status(account=account, amount_minor=50 if state == "short" else None)

    assert credit_check_out(status) == CreditCheckOut(status).data


def test_the_charge_answer_matches_its_serializer(api, user):
    api.post("/v1/billing/charges", charge_body(user, "k1", metadata={"a": [1, {"b": None}]}), format="json")
    charge = Charge.objects.get(idempotency_key="k1")

    assert charge_out(charge) == ChargeOut(charge).data

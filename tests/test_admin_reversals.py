"""The admin: accounts a chargeback left short are one filter away; reversals are read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import AccountFactory, paid_purchase, staff_user
from tests.reversal_events import PaymentStory, deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser() -> Client:
    client = Client()
    client.force_login(staff_user("root", superuser=True))
    return client


def charged_back(external_id: str, intent_id: str, *, spent: bool) -> PaymentStory:
    account = AccountFactory(external_id=external_id)
    story = PaymentStory(
        purchase=paid_purchase(account, payment_intent_id=intent_id, credit=False, status="processing")
    )
    deliver(story.event("payment_intent.succeeded", story.intent(), at=0))
    if spent:
        from accounts.identity import Identity
        from charges.services import charge_create

        identity = Identity(oauth_provider=account.oauth_provider, external_id=account.external_id)
        charge_create(identity=identity, amount_minor=2000, currency="USD", idempotency_key="all", actor="test")
    deliver(
        story.event(
            "charge.dispute.created", story.dispute(f"dp_{external_id.split('@')[0]}", amount=500, status="lost"), at=3
        )
    )
    return story


def test_the_account_list_filters_accounts_a_chargeback_left_short(superuser):
    charged_back("short@example.com", "pi_short0000000001", spent=True)
    charged_back("covered@example.com", "pi_cover0000000001", spent=False)

    flagged = superuser.get("/admin/accounts/account/?chargeback_shortfall=yes").content.decode()
    others = superuser.get("/admin/accounts/account/?chargeback_shortfall=no").content.decode()

    assert "short@example.com" in flagged and "covered@example.com" not in flagged
    assert "covered@example.com" in others and "short@example.com" not in others


def test_reversals_are_listed_and_searchable_but_never_editable(superuser):
    story = charged_back("short@example.com", "pi_short0000000001", spent=True)

    listing = superuser.get("/admin/purchases/reversal/?q=dp_short")
    row = story.purchase.reversals.get()
    change = superuser.post(f"/admin/purchases/reversal/{row.pk}/change/", {"claimed_minor": 0})

    assert listing.status_code == 200 and "dp_short" in listing.content.decode()
    assert superuser.get("/admin/purchases/reversal/add/").status_code == 403
    assert change.status_code == 403
    row.refresh_from_db()
    assert row.claimed_minor == 2000

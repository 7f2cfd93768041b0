"""manage.py reconcile: finds what disagrees, prints the fix, changes nothing, exits 1."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management.base import CommandError
from django.db.models import F

from accounts.models import Account
from ledger.models import EntryKind, LedgerEntry
from purchases.models import Purchase
from tests.conftest import charge_body, run_command
from tests.factories import funded_account, paid_purchase
from tests.live import ROOT

pytestmark = pytest.mark.django_db


def reconcile(*args: str) -> tuple[int, str]:
    try:
        out, _ = run_command("reconcile", *args)
    except CommandError as error:
        return error.returncode, str(error)
    return 0, out


def reconcile_output(*args: str) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("reconcile", *args, stdout=out)
    assert failure.value.returncode == 1
    return out.getvalue()


@pytest.fixture
def healthy(api, user):
    account = funded_account(user, uses=3)
    for i in range(4):
        api.post("/v1/billing/charges", charge_body(user, f"k{i}"), format="json")
    paid_purchase(account, payment_intent_id="pi_ok")
    return account


def money() -> list[tuple]:
    return list(Account.objects.order_by("pk").values_list("balance_minor", "free_uses_remaining"))


def test_a_consistent_service_reconciles_cleanly(healthy):
    code, out = reconcile()

    assert code == 0
    assert "no discrepancies" in out


def test_a_balance_changed_outside_the_ledger_is_found(healthy):
    Account.objects.filter(pk=healthy.pk).update(balance_minor=F("balance_minor") + 700)  # the planted error
    before = money()

    out = reconcile_output()

    assert f"account {healthy.pk}" in out
    assert "balance 2900 but its ledger sums to 2200" in out
    assert f"manage.py record_ledger_drift --account-id {healthy.pk}" in out
    assert "--amount-minor -700 --kind adjustment" in out
    assert money() == before  # reconcile changed nothing


def test_free_uses_and_total_uses_drift_are_found(healthy):
    Account.objects.filter(pk=healthy.pk).update(free_uses_remaining=5, total_uses=99)

    out = reconcile_output()

    assert "free uses 5 but its ledger sums to 0" in out
    assert "total uses 99 but its ledger has 4 charges" in out


def test_recording_the_drift_makes_the_ledger_agree_again(healthy):
    Account.objects.filter(pk=healthy.pk).update(balance_minor=2900)

    run_command("record_ledger_drift", "--account-id", str(healthy.pk), "--reason", "SQL fix on 2026-11-20")

    entry = LedgerEntry.objects.filter(account=healthy).first()
    assert (entry.kind, entry.balance_delta_minor, entry.balance_after_minor, entry.actor) == (
        EntryKind.ADJUSTMENT,
        700,
        2900,
        "command:record_ledger_drift",
    )
    assert Account.objects.get(pk=healthy.pk).balance_minor == 2900
    assert reconcile()[0] == 0
    assert "nothing recorded" in run_command("record_ledger_drift", "--account-id", str(healthy.pk), "--reason", "x")[0]


def test_record_ledger_drift_rejects_bad_arguments(db):
    with pytest.raises(CommandError, match="UUID"):
        run_command("record_ledger_drift", "--account-id", "42", "--reason", "x")
    with pytest.raises(CommandError, match="No account"):
        run_command("record_ledger_drift", "--account-id", "00000000-0000-0000-0000-000000000000", "--reason", "x")


def test_a_paid_purchase_without_its_credit_is_found_and_the_printed_fix_works(healthy):
    purchase = paid_purchase(healthy, payment_intent_id="pi_lost", credit=False)

    out = reconcile_output()

    assert "[purchase_not_credited]" in out and "pi_lost" in out
    fix = next(line for line in out.splitlines() if "fix:" in line and f"purchase:{purchase.pk}" in line)
    args = fix.split("manage.py grant_credits ")[1]
    import shlex

    run_command("grant_credits", *shlex.split(args))
    assert reconcile()[0] == 0
    run_command("grant_credits", *shlex.split(args))  # the printed fix is safe to run twice
    assert Account.objects.get(pk=healthy.pk).balance_minor == 2200 + 2000


def test_a_credit_whose_purchase_was_never_paid_is_found(healthy):
    purchase = paid_purchase(healthy, payment_intent_id="pi_failed")
    Purchase.objects.filter(pk=purchase.pk).update(status="failed")

    out = reconcile_output()

    assert "[credit_without_purchase]" in out
    assert f"its purchase {purchase.pk} is failed" in out
    assert "--amount-minor -2000 --kind adjustment" in out


def test_reconcile_with_stripe_needs_a_key(db, settings):
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(CommandError, match="STRIPE_SECRET_KEY"):
        run_command("reconcile", "--stripe")


def test_reconcile_with_stripe_finds_payments_we_never_credited_and_credits_stripe_never_saw(stripe_settings, user):
    import stripe

    client = stripe.StripeClient(
        stripe_settings.STRIPE_SECRET_KEY, base_addresses={"api": stripe_settings.STRIPE_API_HOST}
    )

    def succeeded_intent(**metadata: str) -> str:
        method = client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
            }
        )
        intent = client.v1.payment_intents.create(
            params={
                "amount": 500,
                "currency": "usd",
                "payment_method_types": ["card"],
                "payment_method": method.id,
                "confirm": True,
                "metadata": metadata,
            }
        )
        assert intent.status == "succeeded"
        return intent.id

    account = funded_account(user)
    matched = succeeded_intent(account_id=str(account.pk))
    paid_purchase(account, payment_intent_id=matched)  # in Stripe and credited: fine
    never_credited = succeeded_intent(account_id=str(account.pk))  # paid in Stripe, no purchase here
    phantom = paid_purchase(account, payment_intent_id="pi_unknown_to_stripe")  # credited, not in Stripe
    before = money()

    out = reconcile_output("--stripe")

    assert f"[stripe_not_credited] PaymentIntent {never_credited}" in out
    assert f"--idempotency-key stripe:{never_credited}" in out
    assert (
        "[credit_unknown_to_stripe]" in out and f"purchase {phantom.pk} for PaymentIntent pi_unknown_to_stripe" in out
    )
    assert matched not in out
    assert money() == before
    assert reconcile()[0] == 0  # locally consistent: only Stripe knows what is missing


def test_a_stand_in_grant_counts_with_the_key_the_fix_prints(healthy):
    from backoffice.findings import purchase_grant_key
    from backoffice.reconcile_purchases import stand_in_keys_by_account

    purchase = paid_purchase(healthy, payment_intent_id="pi_lost", credit=False)
    run_command(
        "grant_credits",
        *["--provider", healthy.oauth_provider, "--external-id", healthy.external_id],
        *["--amount-minor", "2000", "--reason", "r", "--idempotency-key", purchase_grant_key(purchase)],
    )

    assert purchase_grant_key(purchase) == f"purchase:{purchase.pk}"  # hyphenated, as printed
    assert (healthy.pk, purchase_grant_key(purchase)) in stand_in_keys_by_account()
    assert reconcile()[0] == 0


# The embedded default runs on SQLite, where a UUID is stored as 32 hex digits: the match of
# a stand-in grant to its purchase must not depend on how the database spells a UUID.
SQLITE_SCRIPT = """
import shlex
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from accounts.models import Account
from charges.models import Charge
from ledger.models import LedgerEntry
from purchases.models import Purchase
with connection.schema_editor() as editor:
    for model in (Account, Charge, Purchase, LedgerEntry):
        editor.create_model(model)
from backoffice.reconcile_purchases import check_purchases
from tests.factories import funded_account, paid_purchase
account = funded_account({"oauth_provider": "oauth:google", "external_id": "ada@example.com"})
paid_purchase(account, payment_intent_id="pi_lost", credit=False)
found = check_purchases()
print("before", [f.check for f in found])
fix = found[0].fixes[0].split("manage.py grant_credits ")[1]
call_command("grant_credits", *shlex.split(fix))
print("after", [f.check for f in check_purchases()])
"""


def test_reconcile_recognises_its_own_fix_on_sqlite():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "billing_site.settings",
        "DJANGO_SECRET_KEY": "t",
        "DATABASE_URL": "sqlite:///:memory:",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert "before ['purchase_not_credited']" in result.stdout
    assert "after []" in result.stdout

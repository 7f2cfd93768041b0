"""The framework's ceiling: a minimal DRF app doing the same SQL as a check and a charge.

Its usage endpoint is the same one-row charge under a fresh key (the usage posts' target is
the bare charge's throughput), answered as the service answers a usage post.

No middleware, no authentication, no throttling, no serializers, no logging: DRF's APIView
with raw SQL on Django's connection (persistent, like the service's). `make bench` serves
it with the same gunicorn settings as the service but without the access log, so the
difference between the two is what the service does per request beyond the statements.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import django
import environ
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if not settings.configured:
    _db = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    _db["CONN_MAX_AGE"] = 60
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-reference",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        DATABASES={"default": _db},
        USE_TZ=True,
        # No logging: Django logs every 4xx answer (each replay's 409) as a django.request
        # warning, which gunicorn's handler would format and write. The service keeps that
        # logger at ERROR too.
        LOGGING={"version": 1, "disable_existing_loggers": False, "loggers": {"django.request": {"level": "ERROR"}}},
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
            "DEFAULT_THROTTLE_CLASSES": [],
            "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "UNAUTHENTICATED_USER": None,
        },
    )
    django.setup()

from django.core.wsgi import get_wsgi_application
from django.db import connection, transaction
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

ACCOUNT_COLUMNS = (
    "id, tenant_id, oauth_provider, external_id, wa_id, email, status, status_reason, currency, "
    "balance_minor, free_uses_remaining, total_uses, has_paid, created_at, updated_at"
)
IDENTITY = "tenant_id = %s AND oauth_provider = %s AND external_id = %s"


class Check(APIView):
    def post(self, request: Request) -> Response:
        d = request.data
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts_account WHERE {IDENTITY} ORDER BY created_at DESC LIMIT 1",
                [d.get("tenant_id") or "", d["oauth_provider"], d["external_id"]],
            )
            row = cur.fetchone()
        balance, free_uses, total_uses, has_paid = row[9], row[10], row[11], row[12]
        has_credit = free_uses > 0 or balance >= 100
        return Response(
            {
                "has_credit": has_credit,
                "credits_remaining": balance // 100,
                "free_uses_remaining": free_uses,
                "total_uses": total_uses,
                "plan_name": "pro" if has_paid else "free",
                "reason": None if has_credit else "No free uses or credits remaining",
                "purchase_required": not has_credit,
                "purchase_price_minor": None if has_credit else 500,
                "purchase_uses": None if has_credit else 20,
                "account_id": str(row[0]),
                "balance_minor": balance,
            }
        )


class Charge(APIView):
    def post(self, request: Request) -> Response:
        return charge(request.data)


class Usage(APIView):
    def post(self, request: Request) -> Response:
        d = request.data
        response = charge({**d, "idempotency_key": f"usage-{uuid.uuid4()}", "amount_minor": 100})
        if response.status_code != 201:
            return response
        return Response({"logged": True, "usage_log_id": 1}, status=201)


def charge(d: dict) -> Response:
    """The bare charge: the replay lookup, then the locked debit with its ledger entry."""
    identity = [d.get("tenant_id") or "", d["oauth_provider"], d["external_id"]]
    key, amount = d["idempotency_key"], d["amount_minor"]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.id, c.amount_minor FROM charges_charge c JOIN accounts_account a ON c.account_id = a.id "
            "WHERE a.tenant_id = %s AND a.oauth_provider = %s AND a.external_id = %s AND c.idempotency_key = %s "
            "ORDER BY c.created_at DESC LIMIT 1",
            [*identity, key],
        )
        existing = cur.fetchone()
        if existing is not None:
            return Response(
                {"detail": "Charge already exists", "charge_id": str(existing[0])},
                status=409,
                headers={"X-Existing-Charge-ID": str(existing[0])},
            )
        now = datetime.now(UTC)
        with transaction.atomic():
            cur.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts_account WHERE {IDENTITY} "
                "ORDER BY created_at DESC LIMIT 1 FOR UPDATE",
                identity,
            )
            row = cur.fetchone()
            account_id, balance, free_uses, total_uses = row[0], row[9], row[10], row[11]
            if balance < amount:
                return Response({"detail": "Insufficient credits"}, status=402)
            charge_id = uuid.uuid4()
            metadata = json.dumps(d.get("metadata") or {})
            cur.execute(
                "INSERT INTO charges_charge (id, account_id, idempotency_key, amount_minor, currency, "
                "description, metadata, paid_with_free_use, debited_minor, balance_after_minor, "
                "free_uses_after, actor, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, false, %s, %s, %s, %s, %s)",
                [
                    charge_id,
                    account_id,
                    key,
                    amount,
                    "USD",
                    d.get("description") or "",
                    metadata,
                    amount,
                    balance - amount,
                    free_uses,
                    "bench",
                    now,
                ],
            )
            cur.execute(
                "UPDATE accounts_account SET balance_minor = %s, free_uses_remaining = %s, total_uses = %s, "
                "updated_at = %s WHERE id = %s",
                [balance - amount, free_uses, total_uses + 1, now, account_id],
            )
            cur.execute(
                "INSERT INTO ledger_ledgerentry (account_id, kind, balance_delta_minor, free_uses_delta, "
                "balance_after_minor, free_uses_after, currency, charge_id, purchase_id, actor, reason, "
                "idempotency_key, request_fingerprint, details, created_at) VALUES "
                "(%s, 'charge', %s, 0, %s, %s, 'USD', %s, NULL, 'bench', %s, NULL, '', '{}'::jsonb, %s) "
                "RETURNING id",
                [account_id, -amount, balance - amount, free_uses, charge_id, d.get("description") or "", now],
            )
            cur.fetchone()
    return Response(
        {
            "charge_id": str(charge_id),
            "account_id": str(account_id),
            "amount_minor": amount,
            "currency": "USD",
            "balance_after": balance - amount,
            "created_at": now.isoformat().replace("+00:00", "Z"),
            "description": d.get("description") or "",
            "metadata": d.get("metadata") or {},
            "idempotency_key": key,
            "paid_with_free_use": False,
            "free_uses_remaining": free_uses,
        },
        status=201,
    )


urlpatterns = [
    path("v1/billing/credits/check", Check.as_view()),
    path("v1/billing/charges", Charge.as_view()),
    path("v1/billing/litellm/usage", Usage.as_view()),
]

application = get_wsgi_application()

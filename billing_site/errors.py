"""Domain errors raised by services; one handler maps them to HTTP (billing_site.exceptions).

Services never build HTTP responses: they raise one of these, and the API, the admin and
the management commands each present it their own way.
"""

from __future__ import annotations

from typing import Any


class BillingError(Exception):
    """Base for every expected, client-facing failure of a billing operation."""

    status_code = 400
    code = "billing_error"

    def __init__(
        self,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        account_id: object = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}
        # The account concerned, when known: logged with the outcome, never sent to the caller.
        self.account_id = account_id


class InsufficientCredits(BillingError):
    status_code = 402
    code = "insufficient_credits"


def insufficient_credits_detail(*, balance_minor: int, required_minor: int) -> str:
    """The guide's wording, for the 402 and for a credit check's reason alike."""
    return f"Insufficient credits. Balance: {balance_minor}, Required: {required_minor}"


class AccountInactive(BillingError):
    """The account is suspended or closed: it may not be charged."""

    status_code = 403
    code = "account_inactive"


class TenantForbidden(BillingError):
    status_code = 403
    code = "tenant_forbidden"


class NotFound(BillingError):
    status_code = 404
    code = "not_found"


class IdempotencyMismatch(BillingError):
    """The idempotency key was already used with different parameters."""

    status_code = 422
    code = "idempotency_key_reused"


class InvalidOperation(BillingError):
    status_code = 422
    code = "invalid"


class ServiceUnavailable(BillingError):
    status_code = 503
    code = "service_unavailable"

    def __init__(self, detail: str, *, retry_after: int = 30, **kwargs: Any):
        super().__init__(detail, **kwargs)
        self.headers.setdefault("Retry-After", str(retry_after))

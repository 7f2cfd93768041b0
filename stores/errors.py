"""Refusals of store purchase verification (mapped to HTTP by billing_site.exceptions).

The 400 codes are the ones the clients know: purchase_pending, purchase_cancelled,
purchase_not_found, purchase_voided; and purchase_invalid (App Store signed data that does
not verify for our bundle id and environment).
"""

from __future__ import annotations

from billing_site.errors import BillingError


class PurchasePending(BillingError):
    status_code = 400
    code = "purchase_pending"

    def __init__(self) -> None:
        super().__init__("The purchase is pending: it is credited once the payment completes.")


class PurchaseCancelled(BillingError):
    status_code = 400
    code = "purchase_cancelled"

    def __init__(self) -> None:
        super().__init__("The purchase was cancelled.")


class PurchaseNotFound(BillingError):
    status_code = 400
    code = "purchase_not_found"

    def __init__(self) -> None:
        super().__init__("The store does not know this purchase token (unknown or expired).")


class PurchaseVoided(BillingError):
    status_code = 400
    code = "purchase_voided"

    def __init__(self) -> None:
        super().__init__("The purchase was refunded or voided: it is not credited.")


class PurchaseInvalid(BillingError):
    """Signed data that did not verify for this app and environment (never creditable)."""

    status_code = 400
    code = "purchase_invalid"

    def __init__(self) -> None:
        super().__init__("The store's signed transaction is not for this app or environment.")


class PurchaseOfAnotherAccount(BillingError):
    status_code = 409
    code = "purchase_of_another_account"

    def __init__(self) -> None:
        super().__init__("This purchase was already credited to another account.")


class ToolPurchaseAlreadyProcessed(BillingError):
    """The tool pack route answers a replay with 409 (the clients expect it)."""

    status_code = 409
    code = "already_processed"

    def __init__(self) -> None:
        super().__init__("Purchase already processed")


class UserTokenRequired(BillingError):
    """A route for the signed-in user (tool packs): an API key may not act there."""

    status_code = 403
    code = "user_token_required"


class IdentityRequired(BillingError):
    """An API key names the user in the body; a user token carries its own identity."""

    status_code = 422
    code = "validation_error"

    def __init__(self) -> None:
        message = "Required with an API key (a user token carries its own identity)."
        super().__init__(
            "oauth_provider, external_id: " + message,
            extra={"errors": {"oauth_provider": [message], "external_id": [message]}},
        )


class _Invalid(BillingError):
    """422 naming the field, like any validation error."""

    status_code = 422
    code = "validation_error"

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}", extra={"errors": {field: [message]}})


class UnknownPackage(_Invalid):
    def __init__(self, package_name: str):
        super().__init__("package_name", f"Not a package this service sells for: {package_name}")


class UnknownStoreProduct(_Invalid):
    def __init__(self, product_id: str):
        super().__init__("product_id", f"Not a store product of this kind: {product_id}")

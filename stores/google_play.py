"""The Google Play Developer API, through google-api-python-client, in our terms.

Credentials: the service account in GOOGLE_PLAY_SERVICE_ACCOUNT_FILE (its `token_uri` says
where access tokens come from); the API root: GOOGLE_PLAY_API_URL. The client is synchronous
(httplib2), so every call has GOOGLE_PLAY_TIMEOUT_S and is made outside any transaction.
Play's answers become PlayPurchase / VoidedPurchase; its failures become PlayNotFound (the
token is unknown or expired: the buyer's problem, a 400) or PlayUnavailable (Play down,
refusing our credentials, or not configured: ours, a 503).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2
import httplib2
from django.conf import settings
from google.auth.exceptions import GoogleAuthError
from google.oauth2 import service_account
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from billing_site.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/androidpublisher"]

# purchases.products: purchaseState
PURCHASED, CANCELLED, PENDING = 0, 1, 2
# consumptionState
CONSUMED = 1


class PlayUnavailable(ServiceUnavailable):
    """Play cannot answer now, or the service is not configured to ask it."""

    code = "google_play_unavailable"


class PlayNotFound(Exception):
    """Play does not know the token (never issued, or expired)."""


@dataclass(frozen=True)
class PlayPurchase:
    """A one-time product purchase as Play reports it."""

    purchase_state: int
    consumption_state: int
    order_id: str
    product_id: str
    quantity: int


@dataclass(frozen=True)
class VoidedPurchase:
    purchase_token: str
    order_id: str
    voided_time_millis: int
    refund_type: int


def configured() -> bool:
    return bool(settings.GOOGLE_PLAY_SERVICE_ACCOUNT_FILE)


def _credentials() -> service_account.Credentials:
    """The service account, read per client (the file may be rotated while we run)."""
    try:
        with open(settings.GOOGLE_PLAY_SERVICE_ACCOUNT_FILE, encoding="utf-8") as handle:
            info = json.load(handle)
        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
    except (OSError, ValueError, KeyError) as failure:
        logger.error("google play service account unreadable", extra={"error": str(failure)})
        raise PlayUnavailable("Google Play is not configured on this server (service account unreadable).") from None


# httplib2 connections are not thread-safe: one client per thread, rebuilt when the
# configuration it was built from changes.
_local = threading.local()


def _client() -> Any:
    if not configured():
        raise PlayUnavailable("Google Play is not configured on this server.")
    config = (settings.GOOGLE_PLAY_SERVICE_ACCOUNT_FILE, settings.GOOGLE_PLAY_API_URL, settings.GOOGLE_PLAY_TIMEOUT_S)
    cached = getattr(_local, "client", None)
    if cached is not None and cached[0] == config:
        return cached[1]
    timeout = settings.GOOGLE_PLAY_TIMEOUT_S
    http = google_auth_httplib2.AuthorizedHttp(_credentials(), http=httplib2.Http(timeout=timeout))
    client = discovery.build(
        "androidpublisher",
        "v3",
        http=http,
        cache_discovery=False,
        static_discovery=True,
        client_options={"api_endpoint": settings.GOOGLE_PLAY_API_URL},
    )
    _local.client = (config, client)
    return client


def _execute(request_of: Any, *, what: str, not_found: bool = True) -> dict[str, Any]:
    """Run one API request; Play's 400/404/410 are PlayNotFound, anything else failing is 503."""
    try:
        result = request_of(_client()).execute()
    except HttpError as failure:
        status = failure.resp.status
        if not_found and status in (400, 404, 410):
            raise PlayNotFound(what) from None
        logger.warning("google play refused a request", extra={"request": what, "status": status})
        raise PlayUnavailable(f"Google Play answered {status}; try again later.") from None
    except (GoogleAuthError, httplib2.HttpLib2Error, OSError, ValueError) as failure:
        _local.client = None  # a broken connection is not reused
        logger.warning("google play unreachable", extra={"request": what, "error": type(failure).__name__})
        raise PlayUnavailable("Google Play cannot be reached; try again later.") from None
    return result if isinstance(result, dict) else {}


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def product_purchase(*, package_name: str, product_id: str, token: str) -> PlayPurchase:
    """purchases.products.get: the purchase's state (raises PlayNotFound, PlayUnavailable)."""
    body = _execute(
        lambda api: api.purchases().products().get(packageName=package_name, productId=product_id, token=token),
        what="purchases.products.get",
    )
    return PlayPurchase(
        purchase_state=_int(body.get("purchaseState"), default=-1),
        consumption_state=_int(body.get("consumptionState")),
        order_id=str(body.get("orderId") or ""),
        product_id=str(body.get("productId") or product_id),
        quantity=max(1, _int(body.get("quantity"), default=1)),
    )


def consume(*, package_name: str, product_id: str, token: str) -> None:
    """purchases.products.consume. A refusal (e.g. already consumed) raises PlayNotFound."""
    _execute(
        lambda api: api.purchases().products().consume(packageName=package_name, productId=product_id, token=token),
        what="purchases.products.consume",
    )


def voided_purchases(*, package_name: str, start_time_millis: int) -> list[VoidedPurchase]:
    """purchases.voidedpurchases.list, every page, from `start_time_millis` on."""
    found: list[VoidedPurchase] = []
    page_token: str | None = None
    while True:
        params: dict[str, Any] = {"packageName": package_name, "startTime": start_time_millis, "maxResults": 1000}
        if page_token:
            params["token"] = page_token
        body = _execute(
            lambda api, params=params: api.purchases().voidedpurchases().list(**params),
            what="purchases.voidedpurchases.list",
            not_found=False,
        )
        for item in body.get("voidedPurchases") or []:
            if isinstance(item, dict) and isinstance(item.get("purchaseToken"), str) and item["purchaseToken"]:
                found.append(
                    VoidedPurchase(
                        purchase_token=item["purchaseToken"],
                        order_id=str(item.get("orderId") or ""),
                        voided_time_millis=_int(item.get("voidedTimeMillis")),
                        refund_type=_int(item.get("refundType"), default=1),
                    )
                )
        page_token = (body.get("tokenPagination") or {}).get("nextPageToken")
        if not page_token:
            return found

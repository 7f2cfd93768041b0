"""POST /stripe/webhook/<uuid>/: one Stripe delivery, from the request to our answer.

1. Refused before anything is stored: a request carrying X-Djstripe-Webhook-Secret (with
   DEBUG on, dj-stripe would verify the signature against that header's secret, so anyone
   could forge events), one without a Stripe-Signature header, a body that is not a Stripe
   event object (400), any endpoint but the configured one (404: settings.STRIPE_WEBHOOK_ENDPOINT_ID,
   made by `setup_stripe_webhook`), and that one while its security settings differ from
   what the command makes (503). An X-Forwarded-For whose first address is not an IP
   address is dropped (dj-stripe stores it in an IP column).
2. dj-stripe stores the delivery (WebhookEventTrigger: headers, body, valid, processed,
   exception, traceback) and verifies its signature (400 when it fails); a verified one goes,
   inside one transaction, to webhooks.handlers.process_delivery, which stores the Event
   and moves the money.
3. The answer: 200 when processed (a replay, an event about a payment not ours, or a type
   we do not act on included); 400 when the event is about a purchase of ours but disagrees
   with it (PaymentEventRejected: nothing credited, the reason kept on the trigger row);
   409 when it came before the event it depends on (a refund before its credit); 503
   while the database is unavailable; 500 for any other failure. Every failure rolls the
   delivery back, so Stripe's next delivery is processed afresh; never a 200 with
   nothing credited. Between the commit and the answer, dj-stripe's copy of the object is
   refreshed from Stripe (webhooks.mirror); a failure there is recorded, not answered.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from djstripe.models import WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import get_remote_ip
from djstripe.views import ProcessWebhookView

from billing_site import metrics
from billing_site.middleware import database_unavailable_response
from purchases.matching import PaymentEventNotReady, PaymentEventRejected
from webhooks.endpoint_setup import configured_endpoint_id, endpoint_drift
from webhooks.handlers import HANDLED_EVENTS

logger = logging.getLogger(__name__)


def _answer(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def _parse_event(body: bytes) -> dict[str, Any] | None:
    """The body as a Stripe event object (id, type, livemode, data), or None."""
    try:
        event: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    shaped = (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("livemode"), bool)
        and isinstance(event.get("data"), dict)
    )
    return event if shaped else None


def _metrics_label(event: dict[str, Any] | None) -> str:
    """The types we act on by name, any other as "other": a forged body mints no label values."""
    if event is None:
        return "malformed"
    return event["type"] if event["type"] in HANDLED_EVENTS else "other"


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return "%" not in value  # a zone index ("fe80::1%eth0") fits no inet column


def _drop_unusable_forwarded_for(request: HttpRequest) -> None:
    """dj-stripe stores the first X-Forwarded-For address in an IP column: anything else
    there (a forged "not-an-ip") would fail the request. Without the header dj-stripe
    falls back to REMOTE_ADDR, the peer that really connected."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if forwarded is None:
        return
    # What dj-stripe would store: the first address, its port stripped (blank: none at all).
    if forwarded.split(",")[0].strip() and _is_ip(get_remote_ip(request)):
        return
    logger.warning("stripe webhook with an unusable X-Forwarded-For dropped", extra={"forwarded_for": forwarded[:200]})
    del request.META["HTTP_X_FORWARDED_FOR"]
    request.__dict__.pop("headers", None)  # the cached view of META


def _configured_endpoint(uuid: Any) -> WebhookEndpoint | HttpResponse:
    """The URL's endpoint if it is the configured one; else 404, or 503 while it is weakened."""
    endpoint = WebhookEndpoint.objects.filter(djstripe_uuid=uuid).first()
    if endpoint is None or endpoint.id != configured_endpoint_id():
        if endpoint is not None:
            logger.error("stripe webhook for an endpoint other than the configured one refused: %s", endpoint.id)
        return _answer(404, "No such webhook endpoint.", "not_found")
    drift = endpoint_drift(endpoint)
    if drift:
        logger.error(
            "stripe webhook endpoint %s differs from its configuration (%s): deliveries refused until "
            "`manage.py setup_stripe_webhook` is run",
            endpoint.id,
            ", ".join(drift),
        )
        response = _answer(503, "The webhook endpoint is misconfigured; retry later.", "webhook_endpoint_misconfigured")
        response["Retry-After"] = "60"
        return response
    return endpoint


_OUTCOMES = {200: "processed", 400: "rejected", 404: "rejected", 409: "not_ready", 503: "unavailable"}


class StripeWebhookView(ProcessWebhookView):
    """dj-stripe's view (CSRF-exempt, outside ATOMIC_REQUESTS), with our refusals and answers."""

    def post(self, request: HttpRequest, uuid: Any) -> HttpResponse:
        event = _parse_event(request.body)
        response = self._process(request, uuid, event)
        # After the delivery's transaction: by type and outcome (billing_webhook_events_total).
        metrics.observe_webhook_event(
            event_type=_metrics_label(event), outcome=_OUTCOMES.get(response.status_code, "error")
        )
        return response

    def _process(self, request: HttpRequest, uuid: Any, event: dict[str, Any] | None) -> HttpResponse:
        _drop_unusable_forwarded_for(request)
        if "x-djstripe-webhook-secret" in request.headers:
            logger.error("stripe webhook with an X-Djstripe-Webhook-Secret header refused")
            return _answer(400, "X-Djstripe-Webhook-Secret is not accepted.", "invalid_webhook")
        if "stripe-signature" not in request.headers:
            logger.error("stripe webhook without a Stripe-Signature header")
            return _answer(400, "Missing Stripe-Signature header.", "invalid_signature")
        if event is None:
            logger.error("stripe webhook with a malformed body")
            return _answer(400, "The body is not a Stripe event.", "malformed_event")
        endpoint = _configured_endpoint(uuid)
        if isinstance(endpoint, HttpResponse):
            return endpoint
        try:
            # Stores the delivery, verifies it, and runs webhooks.handlers.process_delivery.
            trigger = WebhookEventTrigger.from_request(request, webhook_endpoint=endpoint)
        except PaymentEventRejected as exc:
            return _answer(400, f"Event refused: {exc}.", "event_rejected")
        except PaymentEventNotReady as exc:
            logger.warning("stripe event not ready: %s", exc)
            return _answer(409, f"Not ready, retry later: {exc}.", "event_not_ready")
        except (OperationalError, InterfaceError) as exc:
            logger.error("database unavailable while processing a stripe webhook: %s", exc)
            return database_unavailable_response()
        except Exception:
            logger.exception("stripe webhook processing failed; rolled back for Stripe to retry")
            return _answer(500, "Processing failed; nothing was applied. Stripe will retry.", "webhook_failed")
        if not trigger.valid:
            return _answer(400, "Invalid signature or event.", "invalid_signature")
        return HttpResponse(str(trigger.id))

"""POST /stripe/webhook/<uuid>/: dj-stripe's webhook view, with our answers for our refusals.

dj-stripe checks the signature (400 when it fails), stores every delivery and runs the
receivers in webhooks.handlers inside one transaction. This wrapper adds:
- 400 for a body that is not a Stripe event object at all (dj-stripe would 500 on some);
- 404 for any endpoint but the configured one (settings.STRIPE_WEBHOOK_ENDPOINT_ID, made by
  `setup_stripe_webhook`), and 503 while that one's security settings differ from what
  the command makes (validation off, another secret or tolerance): a row added through
  dj-stripe's admin or a shell never credits anything;
- dj-stripe's fetches from Stripe made before its transaction opens, never inside it
  (webhooks.stripe_sync);
- 400 for a request carrying X-Djstripe-Webhook-Secret: with DEBUG on, dj-stripe would
  verify the signature against that header's secret, so anyone could forge events;
- 400 when a verified event is about a purchase of ours but disagrees with it (another
  account, amount or currency: PaymentEventRejected): nothing is credited, the delivery is
  stored with the reason, an error is logged. An event about a payment that is not ours
  (no purchase_id of ours, an unknown PaymentIntent) is 200: stored, logged, ignored;
- an X-Forwarded-For whose first address is not an IP address is dropped before dj-stripe
  stores the delivery (its IP column would fail the request with a 500);
- 409 when an event came before the one it depends on (a refund before its credit), and
  500 for any other failure: everything is rolled back and Stripe delivers again later.
  Never a 200 with nothing credited.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

import stripe
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger
from djstripe.models.webhooks import _strip_port
from djstripe.views import ProcessWebhookView

from billing_site import metrics
from billing_site.middleware import database_unavailable_response
from purchases.services import PaymentEventNotReady, PaymentEventRejected
from webhooks import stripe_sync
from webhooks.handlers import CHARGE_EVENTS, INTENT_EVENTS, check_event_before_sync
from webhooks.services import configured_endpoint_id, endpoint_drift

HANDLED_EVENTS = INTENT_EVENTS | CHARGE_EVENTS

logger = logging.getLogger(__name__)


def _answer(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def _is_event(body: bytes) -> bool:
    try:
        event: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("livemode"), bool)
        and isinstance(event.get("data"), dict)
    )


def _event_type(body: bytes) -> str:
    """The metrics label: the types we act on by name, any other as "other" (a forged body
    must not be able to mint new label values)."""
    try:
        event: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "malformed"
    kind = event.get("type") if isinstance(event, dict) else None
    return kind if kind in HANDLED_EVENTS else "other"


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
    # The same parsing as dj-stripe's get_remote_ip (first address, port stripped).
    if forwarded and _is_ip(_strip_port(forwarded.split(",")[0])):
        return
    logger.warning("stripe webhook with an unusable X-Forwarded-For dropped", extra={"forwarded_for": forwarded[:200]})
    del request.META["HTTP_X_FORWARDED_FOR"]
    request.__dict__.pop("headers", None)  # the cached view of META


def _refuse_unconfigured_endpoint(uuid: Any) -> HttpResponse | None:
    """404 unless the URL's endpoint is the configured one; 503 while that one is weakened."""
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
    return None


_OUTCOMES = {200: "processed", 400: "rejected", 404: "rejected", 409: "not_ready", 503: "unavailable"}


class StripeWebhookView(ProcessWebhookView):
    def post(self, request: HttpRequest, uuid: Any) -> HttpResponse:
        response = self._process(request, uuid)
        # After dj-stripe's transaction: by type and outcome (billing_webhook_events_total).
        metrics.observe_webhook_event(
            event_type=_event_type(request.body), outcome=_OUTCOMES.get(response.status_code, "error")
        )
        return response

    def _process(self, request: HttpRequest, uuid: Any) -> HttpResponse:
        _drop_unusable_forwarded_for(request)
        if "x-djstripe-webhook-secret" in request.headers:
            logger.error("stripe webhook with an X-Djstripe-Webhook-Secret header refused")
            return _answer(400, "X-Djstripe-Webhook-Secret is not accepted.", "invalid_webhook")
        if "stripe-signature" not in request.headers:
            logger.error("stripe webhook without a Stripe-Signature header")
            return _answer(400, "Missing Stripe-Signature header.", "invalid_signature")
        if not _is_event(request.body):
            logger.error("stripe webhook with a malformed body")
            return _answer(400, "The body is not a Stripe event.", "malformed_event")
        refusal = _refuse_unconfigured_endpoint(uuid)
        if refusal is not None:
            return refusal
        try:
            with stripe_sync.delivery():
                self._sync_before_transaction(request, uuid)
                response = super().post(request, uuid)
        except Http404:
            return _answer(404, "No such webhook endpoint.", "not_found")
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
        if response.status_code == 400:
            return _answer(400, "Invalid signature or event.", "invalid_signature")
        return response

    @staticmethod
    def _sync_before_transaction(request: HttpRequest, uuid: Any) -> None:
        """dj-stripe's copies of the event's objects, fetched and stored before its
        transaction opens (webhooks.stripe_sync): only for a verified event it has not stored."""
        endpoint = WebhookEndpoint.objects.get(djstripe_uuid=uuid)  # the configured one (checked above)
        try:
            body = request.body.decode()
            stripe.WebhookSignature.verify_header(
                body, request.headers["stripe-signature"], endpoint.secret, endpoint.djstripe_tolerance
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            return  # dj-stripe refuses it (400), having fetched nothing
        event = json.loads(body)
        if Event.objects.filter(id=event["id"]).exists():
            return  # a replay: dj-stripe answers it without its receivers
        try:  # the check dj-stripe runs before its sync (webhooks.handlers), here before ours
            check_event_before_sync(sender=WebhookEventTrigger, instance=WebhookEventTrigger(body=body), valid=True)
        except (PaymentEventRejected, PaymentEventNotReady):
            return  # dj-stripe stores it, and the same check refuses it there before any sync
        stripe_sync.sync_event_objects(event)

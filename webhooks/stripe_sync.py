"""No Stripe call while a webhook delivery holds a transaction (SQLite: its write lock).

dj-stripe stores each delivery, then, inside one transaction, stores the Event and runs the
receivers; its own receivers fetch the event's object from Stripe (and, while syncing it,
every related object it does not have yet, inside further small transactions of its own).
On SQLite, whose transactions here begin IMMEDIATE, that held the database's one write lock
through each fetch (up to 10 s, twice), and every charge meanwhile answered 503; on
PostgreSQL it held a connection idle in a transaction.

So the webhook view first runs dj-stripe's own receivers for the event outside any
transaction (`sync_event_objects`): every Stripe request goes out with no transaction
open, and its answer is kept for the rest of the delivery. A request that dj-stripe would
make inside a transaction is not sent: it raises `StripeCallInTransaction`, which rolls
that small transaction back; the request is then made outside, remembered, and dj-stripe's
receivers run again, until they complete with every answer at hand. In the delivery's own
transaction dj-stripe's receivers then find the objects stored and the answers remembered;
should they still need Stripe there, the delivery fails (500, rolled back, Stripe retries)
rather than call Stripe inside it.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import stripe
from django.db import connection
from djstripe import event_handlers
from djstripe.models import Event
from djstripe.signals import WEBHOOK_SIGNALS

logger = logging.getLogger(__name__)

# Rounds of "run dj-stripe's receivers, make the one request they needed": one per object
# dj-stripe syncs from Stripe for an event (the object itself, its customer, payment
# method, charge, balance transaction...).
MAX_SYNC_ROUNDS = 20


@dataclass
class _Delivery:
    """The delivery being processed: its Stripe answers by request, and the transaction depth
    it began at (0 in production; a test's wrapping transaction counts as none)."""

    depth: int
    answers: dict[tuple[str, str], Any] = field(default_factory=dict)

    def in_transaction(self) -> bool:
        return len(connection.atomic_blocks) > self.depth


_current: contextvars.ContextVar[_Delivery | None] = contextvars.ContextVar("stripe_delivery", default=None)


class StripeCallInTransaction(Exception):
    """A Stripe request asked for while a transaction is open during a webhook delivery."""

    def __init__(self, client: Any, key: tuple[str, str], args: tuple[Any, ...], kwargs: dict[str, Any]):
        super().__init__(f"Stripe {key[0].upper()} {key[1]} requested inside a transaction")
        self.client, self.key, self.args, self.kwargs = client, key, args, kwargs

    def send_now(self) -> None:
        """Make the request (no transaction is open any more) and remember its answer."""
        current = _current.get()
        assert current is not None and not current.in_transaction()
        current.answers[self.key] = self.client.request_with_retries(*self.args, **self.kwargs)


class TransactionSafeHttpClient(stripe.RequestsClient):
    """The stripe library's global HTTP client (dj-stripe's calls): during a webhook delivery,
    an answer already had is reused and no request is sent inside a transaction. Outside
    deliveries it is the library's RequestsClient, unchanged."""

    def request_with_retries(self, method: str, url: str, headers: Any, *args: Any, **kwargs: Any) -> Any:
        current = _current.get()
        if current is None:
            return super().request_with_retries(method, url, headers, *args, **kwargs)
        # By method and URL: within one delivery dj-stripe asks for one object the same way,
        # whether or not it names the (single) Stripe account in a header.
        key = (method.lower(), url)
        if key in current.answers:
            return current.answers[key]
        call_args = (method, url, headers, *args)
        if current.in_transaction():
            raise StripeCallInTransaction(self, key, call_args, kwargs)
        answer = super().request_with_retries(*call_args, **kwargs)
        if key[0] == "get":
            current.answers[key] = answer
        return answer


def install() -> None:
    """Replace the global client once, at start, keeping its timeout (purchases.stripe_api)."""
    current = stripe.default_http_client
    if not isinstance(current, TransactionSafeHttpClient):
        stripe.default_http_client = TransactionSafeHttpClient(timeout=getattr(current, "_timeout", 80))


@contextmanager
def delivery() -> Iterator[None]:
    """The scope of one webhook delivery: its Stripe answers are kept, and none is asked inside a transaction."""
    token = _current.set(_Delivery(depth=len(connection.atomic_blocks)))
    try:
        yield
    finally:
        _current.reset(token)


def _djstripe_receivers(event_type: str) -> list[Callable[..., Any]]:
    """dj-stripe's own receivers (djstripe.event_handlers) connected for this event type."""
    signal = WEBHOOK_SIGNALS.get(event_type)
    if signal is None:
        return []
    connected = {entry[0][0] for entry in signal.receivers}  # lookup keys: (id(receiver), id(sender))
    return [
        function
        for _, function in inspect.getmembers(event_handlers, inspect.isfunction)
        if function.__module__ == event_handlers.__name__ and id(function) in connected
    ]


def sync_event_objects(event: dict[str, Any]) -> None:
    """Store dj-stripe's copies of the event's objects now, with no transaction open.

    Called inside `delivery()`, for a verified event dj-stripe has not stored yet.
    """
    receivers = _djstripe_receivers(event["type"])
    stand_in = Event(
        id=event["id"],
        type=event["type"],
        data=event["data"],
        livemode=event["livemode"],
        api_version=event.get("api_version") or "",
    )
    for _ in range(MAX_SYNC_ROUNDS):
        try:
            # The Stripe account that will own the stored Event (dj-stripe asks Stripe once per key).
            Event._find_owner_account(event)
            for receiver in receivers:
                receiver(sender=Event, event=stand_in)
            return
        except StripeCallInTransaction as call:
            call.send_now()
    logger.warning("stripe objects of event %s not synced in %d rounds", event["id"], MAX_SYNC_ROUNDS)

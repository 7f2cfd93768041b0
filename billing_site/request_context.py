"""The request id: taken from (or made for) each request, returned, and put on every log line.

A contextvar carries it, so log records made anywhere while a request runs (services,
the exception handler, libraries) are tagged without passing it around. Gunicorn's sync
workers run one request per thread; the contextvar also keeps threaded or async servers
correct.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_META = "HTTP_X_REQUEST_ID"
# Where the edge middleware leaves the request's id in the WSGI environ, for gunicorn's
# access log (gunicorn.conf.py), written after the request's contextvar was reset.
REQUEST_ID_ENVIRON = "billing.request_id"

# A caller's id is kept only if it is short and plain: it goes into logs and headers.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def request_id_from(header_value: str | None) -> str:
    """The caller's id if it is acceptable, else a new random one."""
    # fullmatch: "$" would let a trailing newline through into a response header.
    if header_value and _ACCEPTABLE_ID.fullmatch(header_value):
        return header_value
    return secrets.token_hex(16)  # 32 hex digits, like uuid4().hex without building a UUID


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every record (None outside a request), for JSON and console logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True

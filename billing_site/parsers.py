"""DRF's JSON parser, with the body-size limit applied to bodies sent without a Content-Length."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class LimitedJSONParser(JSONParser):
    """Reads at most MAX_REQUEST_BODY_BYTES, then lets DRF's JSONParser parse it.

    The edge middleware refuses a declared Content-Length over the limit before anything
    reads the body; a chunked body declares none, so the limit is applied here as it is read.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = settings.MAX_REQUEST_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body too large: the limit is {limit} bytes.")
        if not raw:
            return {}  # as DRF answers a body of Content-Length 0: a 422 for the missing fields
        try:
            return self.parse_body(raw, media_type, parser_context)
        except RecursionError as exc:  # arrays nested thousands deep: not a ValueError
            raise ParseError("JSON parse error - nested too deeply") from exc

    def parse_body(self, raw: bytes, media_type: str | None, parser_context: Mapping[str, Any] | None) -> Any:
        """The body within the limit, parsed (a subclass may read it differently)."""
        return super().parse(io.BytesIO(raw), media_type, parser_context)

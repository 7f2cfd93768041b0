"""The usage endpoint's JSON parser: fractional numbers are read as exact Decimals."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import get_encoding  # type: ignore[attr-defined]  # not in the stubs yet
from rest_framework.utils import json

from billing_site.parsers import LimitedJSONParser


class DecimalJSONParser(LimitedJSONParser):
    """Costs such as 0.0421 cents arrive as JSON numbers: read as Decimal("0.0421"), never a
    binary float, so what is stored is exactly what was sent. DRF's JSONParser has no option
    for it: this is its parse with `parse_float=Decimal` (NaN and Infinity still refused)."""

    def parse_body(self, raw: bytes, media_type: str | None, parser_context: Mapping[str, Any] | None) -> Any:
        try:
            return json.loads(raw.decode(get_encoding(parser_context or {})), parse_float=Decimal)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc

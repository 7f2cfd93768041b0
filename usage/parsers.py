"""The usage endpoint's JSON parser: fractional numbers are read as exact Decimals."""

from __future__ import annotations

from decimal import Decimal

from billing_site.parsers import LimitedJSONParser


class DecimalJSONParser(LimitedJSONParser):
    """Costs such as 0.0421 cents arrive as JSON numbers: read as Decimal("0.0421"), never a
    binary float, so what is stored is exactly what was sent."""

    parse_float = Decimal

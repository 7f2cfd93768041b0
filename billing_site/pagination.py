"""The one cursor pagination of every list endpoint (an account's ledger, its usage records).

DRF decodes the cursor (base64 of `o=&r=&p=`) and passes its position straight into the
queryset's filter. The cursor is client input: a forged position ("²", which `str.isdigit`
accepts and `int` refuses; a NUL byte; a number past the column's range; a date that is
no date) would be a 500 from the filter, or the database. Here the position is checked
against the ordering field before DRF uses it, so any forged cursor is DRF's own 404
("Invalid cursor").
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

# What DRF itself writes for an integer position: str(int). Python's int() also takes
# " 3", "+3", "3_000" and other scripts' digits ("٣"); none of those came from us.
_INTEGER = re.compile(r"-?[0-9]{1,20}")


class NewestFirstCursorPagination(CursorPagination):
    """Newest first by id (unique and increasing: no ties), `page_size` up to 200."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self._model = queryset.model  # decode_cursor, called from here, checks against it
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not self._position_is_valid(cursor.position):
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def _position_is_valid(self, position: object) -> bool:
        position = str(position)
        if "\x00" in position:  # PostgreSQL refuses NUL in any text parameter
            return False
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        try:
            field = self._model._meta.get_field(ordering.lstrip("-"))
        except (AttributeError, FieldDoesNotExist):
            return True  # an ordering across a relation: DRF's own checks only
        if isinstance(field, models.IntegerField | models.AutoField) and not _INTEGER.fullmatch(position):
            return False
        try:
            field.run_validators(field.to_python(position))  # type, format, the column's range
        except (ValidationError, ValueError, TypeError, OverflowError):
            return False
        return True

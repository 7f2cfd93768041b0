"""One place that turns every error into the guide's JSON body and status code."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from billing_site.errors import BillingError
from billing_site.middleware import DATABASE_UNAVAILABLE, DB_RETRY_AFTER_SECONDS, error_body

logger = logging.getLogger(__name__)


def _first_message(detail: Any) -> str:
    """A one-line summary of DRF's nested validation detail ("field: message")."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain errors, DRF errors and database outages to `{"detail", "code"}`."""
    if isinstance(exc, BillingError):
        body = {"detail": exc.detail, "code": exc.code, **exc.extra}
        return Response(body, status=exc.status_code, headers=exc.headers)

    if isinstance(exc, OperationalError | InterfaceError):
        logger.error("database unavailable: %s", exc)
        return Response(
            DATABASE_UNAVAILABLE,
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)},
        )

    if isinstance(exc, DataError):
        # A value the column cannot hold: validation should have caught it; never a 500.
        logger.warning("data error: %s", exc)
        return Response(
            {"detail": "A value is out of range for this field.", "code": "validation_error"},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )

    if isinstance(exc, exceptions.ValidationError):
        # The guide's table: validation errors are 422, malformed JSON is 400.
        return Response(
            {"detail": _first_message(exc.detail), "code": "validation_error", "errors": exc.detail},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = {"detail": _first_message(exc.detail), "code": code}
        if isinstance(exc, exceptions.ParseError):
            response.data["code"] = "malformed_json"
    return response


def _json_error(status_code: int) -> JsonResponse:
    return JsonResponse(error_body(status_code), status=status_code)


# Django-level handlers (urls.py): even requests that never reach DRF get JSON.
def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(404)


def server_error(request: HttpRequest) -> JsonResponse:
    return _json_error(500)

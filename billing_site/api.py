"""Shared pieces of the API views: validation, replay answers and documented errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response


class JSONOnlyNegotiation(DefaultContentNegotiation):
    """Each view has one renderer (JSON for the API): use it whatever the Accept header
    says, without parsing Accept on every request (and never answer 406)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class ErrorOut(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


IDENTITY_EXAMPLE = {"oauth_provider": "oauth:google", "external_id": "user@example.com"}


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorOut, description=description)


COMMON_ERRORS = {
    400: error("Malformed JSON."),
    401: error("No or bad API key."),
    403: error("The key lacks the permission, or may not act for that tenant."),
    413: error("Body over 64 KiB."),
    422: error("Validation error."),
    429: error("Rate limited (see Retry-After)."),
    503: error("Database unavailable (see Retry-After)."),
}


def validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Validate the body (raising 422 on errors); unknown fields are dropped, not refused.

    The caller's `own_input` first: a user token's identity replaces any the body names."""
    own_input = getattr(request.auth, "own_input", None)
    data = own_input(request.data) if own_input is not None else request.data
    validate_body = getattr(serializer_class, "validate_body", None)  # accounts.serializers.ShallowFieldsMixin
    if validate_body is not None:
        return validate_body(data)  # type: ignore[no-any-return]
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def replay_response(original: dict[str, Any], *, detail: str, headers: dict[str, str]) -> Response:
    """409 whose body carries the original result, so a retry learns what happened."""
    body = {**original, "detail": detail, "code": "duplicate_idempotency_key"}
    return Response(body, status=status.HTTP_409_CONFLICT, headers=headers)

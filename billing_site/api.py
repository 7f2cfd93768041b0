"""Shared pieces of the API views: validation, replay answers and documented errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pydantic
from drf_spectacular.utils import OpenApiResponse
from pydantic_core import ErrorDetails
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response


class JSONOnlyNegotiation(DefaultContentNegotiation):
    """Each view has one renderer (JSON for the API): answer with it whatever the Accept
    header says, never a 406 (a client that sends `Accept: text/html` still gets JSON)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def as_openapi_30(schema: dict[str, Any], model: type[Any]) -> None:
    """pydantic writes JSON Schema (a nullable field is `anyOf: [X, {"type": "null"}]`);
    the published document is OpenAPI 3.0, which says `nullable: true` (and has no titles)."""
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        branches = [branch for branch in prop.get("anyOf", []) if branch != {"type": "null"}]
        if len(branches) == 1 and len(prop["anyOf"]) == 2:
            del prop["anyOf"]
            prop.update(branches[0], nullable=True)


class ApiModel(pydantic.BaseModel):
    """A pydantic body or answer, described in the OpenAPI document like a DRF serializer."""

    model_config = pydantic.ConfigDict(json_schema_extra=as_openapi_30)


if TYPE_CHECKING:  # generic in the DRF stubs only
    _Serializer = serializers.Serializer[Any]
else:
    _Serializer = serializers.Serializer


class ErrorOut(_Serializer):
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


# pydantic's error types in DRF's words, so that a 422 reads the same on every endpoint.
DRF_MESSAGES = {
    "missing": "This field is required.",
    "string_type": "Not a valid string.",
    "int_type": "A valid integer is required.",
    "string_too_short": "This field may not be blank.",
    "string_too_long": "Ensure this field has no more than {max_length} characters.",
    "greater_than_equal": "Ensure this value is greater than or equal to {ge}.",
    "less_than_equal": "Ensure this value is less than or equal to {le}.",
    "model_type": "Invalid data. Expected a dictionary, but got {type_name}.",
}


def drf_message(error: ErrorDetails) -> str:
    value = error.get("input")
    if value is None and error["type"] == "model_type":
        return "No data provided"
    if value is None and error["type"] in ("string_type", "int_type"):
        return "This field may not be null."
    if error["type"] == "string_unicode" and isinstance(value, str):
        surrogate = next((char for char in value if "\ud800" <= char <= "\udfff"), "\ud800")
        return f"Surrogate characters are not allowed: U+{ord(surrogate):X}."
    template = DRF_MESSAGES.get(error["type"])
    if template is None:
        return error["msg"]
    return template.format(**error.get("ctx", {}), type_name=type(value).__name__)


def drf_errors(exc: pydantic.ValidationError) -> dict[str, list[str]]:
    """`{field: [messages]}` as DRF reports it ("non_field_errors" for the body itself)."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "non_field_errors"
        errors.setdefault(field, []).append(drf_message(error))
    return errors


def validated(schema: type[serializers.Serializer[Any]] | type[pydantic.BaseModel], request: Request) -> dict[str, Any]:
    """The body, validated by a DRF serializer or a pydantic model (a 422 when it is not
    valid, with DRF's error body either way); undeclared fields are dropped, not refused."""
    own_input = getattr(request.auth, "own_input", None)  # a user token's identity replaces the body's
    data = own_input(request.data) if own_input is not None else request.data
    if issubclass(schema, pydantic.BaseModel):
        try:
            return schema.model_validate(data).model_dump()
        except pydantic.ValidationError as exc:
            raise exceptions.ValidationError(drf_errors(exc)) from None
    serializer = schema(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def replay_response(original: dict[str, Any], *, detail: str, headers: dict[str, str]) -> Response:
    """409 whose body carries the original result, so a retry learns what happened."""
    body = {**original, "detail": detail, "code": "duplicate_idempotency_key"}
    return Response(body, status=status.HTTP_409_CONFLICT, headers=headers)

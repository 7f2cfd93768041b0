"""OpenAPI description of our authentication (drf-spectacular extension): API keys, and
users' ID tokens on the operations that accept them."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.auth.ApiKeyAuthentication"
    name = ["ApiKeyAuth", "BearerAuth", "UserToken"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            {"type": "http", "scheme": "bearer", "description": "The same API key as a bearer token."},
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "A signed-in user's Google or Apple ID token (the CIRIS agent on phones and desktops). "
                    "It acts on that user's own account only; the identity comes from the token, and any "
                    "identity in the body or query is ignored. Expired: 401 token_expired."
                ),
            },
        ]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[str]]]:
        # Any one of them will do (OR), not all.
        schemes: list[dict[str, list[str]]] = [{"ApiKeyAuth": []}, {"BearerAuth": []}]
        if getattr(auto_schema.view, "user_tokens_allowed", False):
            schemes.append({"UserToken": []})
        return schemes

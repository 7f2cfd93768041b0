"""Google and Apple ID tokens: the signed-in user of the CIRIS agent on a phone or desktop.

Verification is PyJWT's: `PyJWKClient` fetches and caches each provider's published key set
(refetching on an unknown `kid`, at most once per cooldown, so forged kids cannot make us
hammer Google), and `jwt.decode` checks the RS256 signature, issuer, audience and times.
We only choose the provider by the token's claimed issuer and translate failures: a key set
we cannot fetch is our outage (503), never the user's fault (401).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings

GOOGLE = "oauth:google"
APPLE = "oauth:apple"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
APPLE_ISSUERS = ("https://appleid.apple.com",)
# Clock skew allowed on exp, iat and nbf.
LEEWAY_SECONDS = 60
# Real ID tokens are about 1 KB; anything far larger is not one (and not worth parsing).
MAX_TOKEN_LENGTH = 8192
# How long one fetch of a key set may take: the request waiting on it holds a worker.
JWKS_TIMEOUT_SECONDS = 5
# What a client is told to wait when a key set cannot be fetched.
JWKS_RETRY_AFTER_SECONDS = 30


class InvalidIdToken(Exception):
    """The token is not one we accept: 401 invalid_token."""

    code = "invalid_token"


class ExpiredIdToken(InvalidIdToken):
    """A genuine token past its exp: 401 token_expired, the agent's cue to refresh."""

    code = "token_expired"


class RevokedIdToken(InvalidIdToken):
    """Staff revoked this token (accounts.revocation)."""

    code = "token_revoked"


class KeySetUnavailable(Exception):
    """The provider's key set could not be fetched: our outage, answered 503."""


@dataclass(frozen=True)
class Provider:
    name: str
    issuers: tuple[str, ...]
    audiences: tuple[str, ...]
    jwks_url: str


@dataclass(frozen=True)
class VerifiedIdToken:
    """Who a verified token says the user is."""

    provider: str
    sub: str
    email: str


def token_sha256(token: str) -> str:
    """How a token is named once it is stored (revocations): never the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_id_token(value: str) -> bool:
    """A Bearer value with two dots is a JWT (an ID token); anything else is an API key."""
    return value.count(".") == 2


def providers() -> tuple[Provider, ...]:
    return (
        Provider(GOOGLE, GOOGLE_ISSUERS, tuple(settings.GOOGLE_OAUTH_CLIENT_IDS), settings.GOOGLE_OAUTH_JWKS_URL),
        Provider(APPLE, APPLE_ISSUERS, tuple(settings.APPLE_OAUTH_CLIENT_IDS), settings.APPLE_OAUTH_JWKS_URL),
    )


_clients: dict[tuple[str, int, int], jwt.PyJWKClient] = {}
_clients_lock = threading.Lock()


def jwks_client(url: str) -> jwt.PyJWKClient:
    """One PyJWKClient per key-set URL and process: its cache lives as long as the process."""
    lifespan, cooldown = settings.ID_TOKEN_JWKS_CACHE_SECONDS, settings.ID_TOKEN_JWKS_COOLDOWN_SECONDS
    key = (url, lifespan, cooldown)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = jwt.PyJWKClient(
                url,
                cache_jwk_set=True,
                lifespan=lifespan,
                cooldown_duration=cooldown,
                timeout=JWKS_TIMEOUT_SECONDS,
            )
            _clients[key] = client
        return client


def _provider_for(token: str) -> tuple[Provider, str]:
    """The provider whose issuer the (not yet verified) token names, and the key id it names.

    Both are checked again by the signature and by decode; reading them first lets a token
    that can never pass (wrong algorithm, unknown issuer) fail without touching a key set.
    """
    try:
        header = jwt.get_unverified_header(token)
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidIdToken("The token is malformed.") from exc
    if header.get("alg") != "RS256":
        raise InvalidIdToken("The token must be signed with RS256.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidIdToken("The token names no signing key.")
    issuer = claims.get("iss")
    for provider in providers():
        if issuer in provider.issuers:
            if not provider.audiences:
                raise InvalidIdToken(f"Sign-in with {provider.name} is not configured on this service.")
            return provider, kid
    raise InvalidIdToken("The token's issuer is not accepted.")


def _signed_claims(token: str, provider: Provider, kid: str) -> dict[str, Any]:
    """The token's claims once its RS256 signature (by the provider's key `kid`), issuer,
    audience and times check out."""
    client = jwks_client(provider.jwks_url)
    unavailable = KeySetUnavailable(f"The {provider.name} signing keys could not be fetched.")
    try:
        client.get_signing_keys()  # the cached set, else one fetch: a failure here is the provider's
    except (jwt.PyJWTError, ValueError) as exc:  # unreachable, an error status, not a key set
        raise unavailable from exc
    try:
        signing_key = client.get_signing_key(kid)  # an unknown kid refetches, once per cooldown
    except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError, ValueError) as exc:
        raise unavailable from exc
    except jwt.PyJWTError as exc:  # PyJWKClientError: not in the set, even after a refetch
        raise InvalidIdToken("The token's signing key is unknown.") from exc
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience=list(provider.audiences),
            issuer=list(provider.issuers),
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ExpiredIdToken("The token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"The token is not valid: {exc}") from exc
    return claims


def verify_id_token(token: str) -> VerifiedIdToken:
    """The user a Google or Apple ID token names, once its signature and claims check out.

    Raises InvalidIdToken (or ExpiredIdToken) for every token we refuse, and KeySetUnavailable
    when the provider's keys cannot be fetched.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidIdToken("The token is malformed.")
    provider, kid = _provider_for(token)
    claims = _signed_claims(token, provider, kid)
    sub, email = claims.get("sub"), claims.get("email")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise InvalidIdToken("The token names no user.")
    return VerifiedIdToken(
        provider=provider.name,
        sub=sub,
        email=email if isinstance(email, str) and len(email) <= 254 else "",
    )


def verify_google_token(token: str, *, audience: str) -> dict[str, Any]:
    """The claims of a Google-signed OIDC token for `audience` (a Pub/Sub push's
    `Authorization: Bearer`), verified like a user's ID token against GOOGLE_OAUTH_JWKS_URL.

    Same errors as verify_id_token; the caller checks the claims it cares about (`email`).
    """
    if len(token) > MAX_TOKEN_LENGTH or not looks_like_id_token(token) or not audience:
        raise InvalidIdToken("The token is malformed.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidIdToken("The token is malformed.") from exc
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str) or not kid:
        raise InvalidIdToken("The token must be signed with RS256 by a named key.")
    google = Provider(GOOGLE, GOOGLE_ISSUERS, (audience,), settings.GOOGLE_OAUTH_JWKS_URL)
    return _signed_claims(token, google, kid)

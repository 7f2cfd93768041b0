"""An RSA signing key set that mints RS256 tokens and publishes its public half as a JWKS.

Shared by the Google fake and any later Apple fake: both providers sign ID tokens with
RS256 keys announced at a JWKS URL, so one issuer serves both.
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def new_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (the size Google and Apple use)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """The key as unencrypted PKCS#8 PEM, the form a service-account file carries."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    """The public half as PEM (what a key-confusion attacker would use as an HMAC secret)."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class KeyIssuer:
    """RSA key pairs by kid: `jwks()` publishes them, `mint()` signs with the current one.

    `rotate()` makes a new current key; the old one stays published only when asked, so tests
    can play both a clean rotation and a token signed by a key the set no longer lists.
    """

    def __init__(self, *, kid: str | None = None) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = ""
        self.rotate(kid=kid)

    def rotate(self, *, kid: str | None = None, keep_previous: bool = False) -> str:
        """Make a new signing key current and return its kid."""
        new_kid = kid or secrets.token_hex(20)
        key = new_rsa_key()
        with self._lock:
            if not keep_previous:
                self._keys.clear()
            self._keys[new_kid] = key
            self.kid = new_kid
        return new_kid

    @property
    def key(self) -> rsa.RSAPrivateKey:
        """The current private key."""
        with self._lock:
            return self._keys[self.kid]

    def public_pem(self, kid: str | None = None) -> str:
        """The public PEM of a published key (the current one by default)."""
        with self._lock:
            return public_pem(self._keys[kid or self.kid])

    def jwks(self) -> dict[str, Any]:
        """The published key set, shaped like Google's and Apple's."""
        with self._lock:
            items = list(self._keys.items())
        keys = []
        for kid, key in items:
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
            keys.append(jwk)
        return {"keys": keys}

    def mint(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Sign `claims` with RS256 using the key `kid` (current by default).

        A `kid` that is not in the set signs with a fresh throwaway key under that name,
        so a test can present a token whose key the verifier can never find.
        """
        with self._lock:
            use_kid = kid or self.kid
            key = self._keys.get(use_kid) or new_rsa_key()
        all_headers = {"kid": use_kid, **(headers or {})}
        return jwt.encode(claims, private_pem(key), algorithm="RS256", headers=all_headers)

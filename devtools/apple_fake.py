"""A loopback stand-in for Sign in with Apple: its key set (`/auth/keys`) and ID tokens.

Apple signs ID tokens with RS256 keys it publishes at https://appleid.apple.com/auth/keys;
point APPLE_OAUTH_JWKS_URL at `jwks_url` here and the service verifies these tokens exactly
as it verifies Apple's.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.jwks import KeyIssuer

APPLE_ISSUER = "https://appleid.apple.com"


class AppleIdFake:
    """Apple's ID-token key set on 127.0.0.1, and tokens shaped like Apple's."""

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.issuer = KeyIssuer()
        self.requests: list[tuple[str, str]] = []
        self.jwks_unavailable = False

    def start(self) -> AppleIdFake:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="apple-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/auth/keys"

    def mint_id_token(
        self,
        sub: str,
        *,
        aud: str,
        email: str | None = None,
        iss: str = APPLE_ISSUER,
        expires_in: int = 600,
        issued_at: int | None = None,
        **claims: Any,
    ) -> str:
        """An ID token as Sign in with Apple returns it (Apple sends booleans as strings)."""
        kid = claims.pop("kid", None)
        iat = int(time.time()) if issued_at is None else issued_at
        body: dict[str, Any] = {
            "iss": iss,
            "aud": aud,
            "exp": iat + expires_in,
            "iat": iat,
            "sub": sub,
            "c_hash": "fake",
            "auth_time": iat,
            "nonce_supported": True,
        }
        if email is not None:
            body.update({"email": email, "email_verified": "true", "is_private_email": "false"})
        body.update(claims)
        return self.issuer.mint({k: v for k, v in body.items() if v is not None}, kid=kid)


class _Handler(BaseHTTPRequestHandler):
    fake: AppleIdFake
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.fake.requests.append(("GET", self.path))
        if self.path != "/auth/keys":
            status, body = 404, {"error": "not_found"}
        elif self.fake.jwks_unavailable:
            status, body = 503, {"error": "unavailable"}
        else:
            status, body = 200, self.fake.issuer.jwks()
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `requests` on the fake records what was asked."""

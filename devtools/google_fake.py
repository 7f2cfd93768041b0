"""A loopback stand-in for the Google endpoints the service talks to.

It serves Google's ID-token key set (`/oauth2/v3/certs`), the OAuth token endpoint a
service account signs in at (`/token`), and the Play Developer API routes for one-time
products, answering the way Google does, so google-auth and google-api-python-client run
against it unchanged: only the URLs an operator configures point here instead.

Run it alone for a walk-through: `python -m devtools.google_fake --port 8431`.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from devtools.jwks import KeyIssuer, new_rsa_key, private_pem

GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PURCHASES = re.compile(r"^/androidpublisher/v3/applications/(?P<pkg>[^/]+)/purchases/(?P<rest>.+)$")
PRODUCT = re.compile(r"^products/(?P<product>[^/]+)/tokens/(?P<token>[^/:]+)(?::(?P<action>consume|acknowledge))?$")
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    410: "GONE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Purchase:
    package: str
    product_id: str
    token: str
    state: int
    order_id: str
    quantity: int
    purchase_time_ms: int
    obfuscated_account_id: str | None = None
    consumed: bool = False
    acknowledged: bool = False
    expired: bool = False
    voided: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "androidpublisher#productPurchase",
            "purchaseTimeMillis": str(self.purchase_time_ms),
            "purchaseState": self.state,
            "consumptionState": 1 if self.consumed else 0,
            "developerPayload": "",
            "orderId": self.order_id,
            "acknowledgementState": 1 if self.acknowledged else 0,
            "productId": self.product_id,
            "quantity": self.quantity,
            "regionCode": "US",
        }
        if self.obfuscated_account_id is not None:
            body["obfuscatedExternalAccountId"] = self.obfuscated_account_id
        body.update(self.extra)
        return body


class GoogleFake:
    """Google's key set, OAuth token endpoint and Play purchases API on 127.0.0.1.

    Control methods (`add_purchase`, `void`, `fail_next`, `jwks_unavailable`...) set up
    what the next request sees; `requests` lists what the code under test asked for.
    """

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.issuer = KeyIssuer()
        self._sa_key = new_rsa_key()
        self._sa_key_id = secrets.token_hex(20)
        self.service_account_email = "play-billing@ciris-fake.iam.gserviceaccount.com"
        self._access_tokens: dict[str, float] = {}
        self._purchases: dict[str, _Purchase] = {}
        self._failures: list[list[Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.jwks_unavailable = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> GoogleFake:
        """Listen on 127.0.0.1 in a daemon thread; returns self for chaining."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="google-fake", daemon=True)
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

    def __enter__(self) -> GoogleFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/oauth2/v3/certs"

    @property
    def api_url(self) -> str:
        return f"{self.url}/"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    # -- tokens Google signs ---------------------------------------------------------------

    def mint_id_token(
        self,
        sub: str,
        *,
        aud: str,
        email: str | None = None,
        iss: str = GOOGLE_ISSUER,
        expires_in: int = 3600,
        issued_at: int | None = None,
        **claims: Any,
    ) -> str:
        """A Google ID token as Sign-In hands to an app; a claim passed as None is left out.

        `kid=` and `headers=` in `claims` go to the JOSE header instead (a kid not in the
        key set signs with a throwaway key).
        """
        kid = claims.pop("kid", None)
        headers = claims.pop("headers", None)
        iat = int(time.time()) if issued_at is None else issued_at
        body: dict[str, Any] = {
            "iss": iss,
            "azp": aud,
            "aud": aud,
            "sub": sub,
            "iat": iat,
            "exp": iat + expires_in,
        }
        if email is not None:
            body.update({"email": email, "email_verified": True})
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return self.issuer.mint(body, kid=kid, headers=headers)

    def mint_pubsub_token(self, *, aud: str, email: str) -> str:
        """The OIDC token Pub/Sub push puts in `Authorization: Bearer` for a push endpoint."""
        sub = str(100000000000000000000 + secrets.randbelow(10**20))
        return self.mint_id_token(sub, aud=aud, email=email, azp=sub)

    # -- service account and OAuth ---------------------------------------------------------

    def service_account_info(self) -> dict[str, Any]:
        """A service-account key file whose `token_uri` is this fake."""
        return {
            "type": "service_account",
            "project_id": "ciris-fake",
            "private_key_id": self._sa_key_id,
            "private_key": private_pem(self._sa_key),
            "client_email": self.service_account_email,
            "client_id": "100000000000000000001",
            "auth_uri": f"{self.url}/o/oauth2/auth",
            "token_uri": self.token_url,
            "auth_provider_x509_cert_url": f"{self.url}/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }

    def _grant(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type", [""])[0] != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
        try:
            jwt.decode(
                form.get("assertion", [""])[0],
                self._sa_key.public_key(),
                algorithms=["RS256"],
                # google-auth always names Google's own endpoint as the audience
                audience=[self.token_url, GOOGLE_TOKEN_AUDIENCE],
                issuer=self.service_account_email,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[token] = time.time() + 3600
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self._lock:
            expiry = self._access_tokens.get(header[len("Bearer ") :])
        return expiry is not None and expiry > time.time()

    # -- Play purchases: setup -------------------------------------------------------------

    def add_purchase(
        self,
        package: str,
        product_id: str,
        token: str,
        *,
        state: int = 0,
        order_id: str | None = None,
        quantity: int = 1,
        obfuscated_account_id: str | None = None,
        purchase_time_ms: int | None = None,
    ) -> dict[str, Any]:
        """Record a one-time product purchase (state 0 purchased, 1 cancelled, 2 pending)."""
        purchase = _Purchase(
            package=package,
            product_id=product_id,
            token=token,
            state=state,
            order_id=order_id or f"GPA.{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**16):016d}",
            quantity=quantity,
            purchase_time_ms=purchase_time_ms or _now_ms(),
            obfuscated_account_id=obfuscated_account_id,
        )
        with self._lock:
            self._purchases[token] = purchase
            return purchase.resource()

    def set_state(self, token: str, state: int) -> None:
        with self._lock:
            self._purchases[token].state = state

    def void(self, token: str, *, refund_type: int = 1) -> dict[str, Any]:
        """Refund or charge back a purchase: it shows in `voidedpurchases` from now on."""
        with self._lock:
            purchase = self._purchases[token]
            purchase.voided = {
                "kind": "androidpublisher#voidedPurchase",
                "purchaseToken": token,
                "purchaseTimeMillis": str(purchase.purchase_time_ms),
                "voidedTimeMillis": str(_now_ms()),
                "orderId": purchase.order_id,
                "voidedSource": 0,
                "voidedReason": 0,
                "refundType": refund_type,
            }
            return dict(purchase.voided)

    def consumed(self, token: str) -> bool:
        with self._lock:
            return self._purchases[token].consumed

    def acknowledged(self, token: str) -> bool:
        with self._lock:
            return self._purchases[token].acknowledged

    def expire(self, token: str) -> None:
        """The token stops being valid: Google then answers 410 Gone for it."""
        with self._lock:
            self._purchases[token].expired = True

    def fail_next(self, path_fragment: str, status: int, times: int = 1) -> None:
        """The next `times` requests whose path contains `path_fragment` get `status`."""
        with self._lock:
            self._failures.append([path_fragment, status, times])

    def _injected_failure(self, path: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure[0] in path and failure[2] > 0:
                    failure[2] -= 1
                    return int(failure[1])
        return None

    # -- Play purchases: the API -----------------------------------------------------------

    def _purchases_api(self, method: str, pkg: str, rest: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if rest == "voidedpurchases" and method == "GET":
            return self._voided(pkg, query)
        match = PRODUCT.match(rest)
        if match is None:
            return _error(404, "Not Found")
        product_id, token, action = match["product"], match["token"], match["action"]
        if (method == "GET") != (action is None):
            return _error(405 if action is None else 404, "Method not allowed")
        with self._lock:
            purchase = self._purchases.get(token)
            if purchase is None or purchase.package != pkg or purchase.product_id != product_id:
                return _error(404, "The purchase token was not found.", reason="purchaseTokenNotFound")
            if purchase.expired:
                return _error(410, "The purchase token is no longer valid.", reason="purchaseTokenNoLongerValid")
            if action is None:
                body = purchase.resource()
                body["purchaseToken"] = token
                return 200, body
            if action == "consume":
                if purchase.state != 0:
                    return _error(400, "The product purchase is not owned by the user.", reason="productNotOwnedByUser")
                if purchase.consumed:
                    return _error(400, "The product purchase has already been consumed.", reason="alreadyConsumed")
                purchase.consumed = True
                return 204, None
            if purchase.state != 0:
                return _error(400, "The product purchase is not owned by the user.", reason="productNotOwnedByUser")
            purchase.acknowledged = True
            return 204, None

    def _voided(self, pkg: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        def number(name: str, default: int) -> int:
            try:
                return int(query.get(name, [default])[0])
            except ValueError:
                return -1

        now = _now_ms()
        start = number("startTime", now - 30 * 86400 * 1000)
        end = number("endTime", now)
        max_results = number("maxResults", 1000)
        offset = number("token", 0)
        if start < 0 or end < 0 or max_results <= 0 or offset < 0 or start > end:
            return _error(400, "Invalid value for startTime, endTime, maxResults or token.")
        with self._lock:
            voided = [
                dict(p.voided)
                for p in self._purchases.values()
                if p.voided is not None and p.package == pkg and start <= int(p.voided["voidedTimeMillis"]) <= end
            ]
        voided.sort(key=lambda v: int(v["voidedTimeMillis"]))
        page = voided[offset : offset + max_results]
        body: dict[str, Any] = {
            "pageInfo": {"totalResults": len(page), "resultPerPage": max_results, "startIndex": offset}
        }
        if page:
            body["voidedPurchases"] = page
        if offset + max_results < len(voided):
            body["tokenPagination"] = {"nextPageToken": str(offset + max_results)}
        return 200, body

    # -- dispatch --------------------------------------------------------------------------

    def _handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.requests.append((method, raw_path))
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        failure = self._injected_failure(raw_path)
        if failure is not None:
            status, payload = _error(failure, "Injected failure")
            return status, payload, {}
        if path == "/oauth2/v3/certs" and method == "GET":
            if self.jwks_unavailable:
                status, payload = _error(503, "The service is currently unavailable.")
                return status, payload, {}
            return 200, self.issuer.jwks(), {"Cache-Control": "public, max-age=21600, must-revalidate"}
        if path == "/token" and method == "POST":
            status, payload = self._grant(parse_qs(body.decode("utf-8", "replace")))
            return status, payload, {"Cache-Control": "no-store"}
        match = PURCHASES.match(path)
        if match is None:
            status, payload = _error(404, "Not Found")
            return status, payload, {}
        if not self._authorized(headers.get("Authorization")):
            status, payload = _error(401, "Request is missing required authentication credential.", reason="required")
            return status, payload, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
        status, payload = self._purchases_api(method, match["pkg"], match["rest"], query)
        return status, payload, {}


def _error(status: int, message: str, *, reason: str | None = None) -> tuple[int, dict[str, Any]]:
    """Google's JSON error envelope."""
    return status, {
        "error": {
            "code": status,
            "message": message,
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
            "errors": [{"message": message, "domain": "global", "reason": reason or "invalid"}],
        }
    }


class _Handler(BaseHTTPRequestHandler):
    fake: GoogleFake
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, headers = self.fake._handle(self.command, self.path, self.headers, body)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `requests` on the fake records what was asked."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Google (ID-token keys, OAuth, Play) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8431)
    parser.add_argument(
        "--aud", default="ciris-web-client.apps.googleusercontent.com", help="client id of the sample token"
    )
    args = parser.parse_args(argv)
    fake = GoogleFake(port=args.port).start()
    token = fake.mint_id_token("109876543210987654321", aud=args.aud, email="user@example.com", expires_in=3600)
    print(f"Google fake on {fake.url}")
    print(f"  GOOGLE_OAUTH_JWKS_URL={fake.jwks_url}")
    print(f"  Play API endpoint:     {fake.api_url}")
    print(f"  OAuth token URL:       {fake.token_url}")
    print(f"Sample ID token (aud {args.aud}, valid one hour):")
    print(token, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

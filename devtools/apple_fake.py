"""A local stand-in for Apple's App Store, for tests and for trying iOS purchases locally.

Apple is never reached from these machines, so this plays its parts, on loopback only:
- a certificate chain shaped like Apple's (root, intermediate with OID 1.2.840.113635.100.6.2.1,
  leaf with OID 1.2.840.113635.100.6.11.1; SubjectKeyIdentifier / AuthorityKeyIdentifier and
  critical BasicConstraints / KeyUsage), so Apple's own `SignedDataVerifier` accepts what it
  signs with its strict X.509 checks, given this fake's root certificate;
- signed transactions (`signedTransactionInfo`) and App Store Server Notifications V2
  (`signedPayload`) that a test or a person mints;
- the App Store Server API's transaction lookup (`GET /inApps/v1/transactions/{id}`), which
  checks the caller's ES256 bearer token against the API key it handed out and, as Apple does,
  signs its answer when it gives it (a fresh signedDate); Production is served at the root
  and Sandbox under `/sandbox` (the service's APPLE_STOREKIT_API_URL);
- Sign in with Apple ID tokens and their key set (`/auth/keys`);
- for a walk-through, Apple's side of a refund: `POST /_fake/refund/{id}` (and
  `/_fake/refund-reversed/{id}`) changes what the lookup answers and returns the notification
  Apple would send.

Run it alone for a walk-through: `python -m devtools.apple_fake --port 8432 --dir /tmp/apple`
writes the root certificate and the API key where the service's configuration can name them.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.jwks import KeyIssuer

APPLE_ID_ISSUER = "https://appleid.apple.com"
LEAF_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
INTERMEDIATE_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
PRODUCTION, SANDBOX = "Production", "Sandbox"
TRANSACTION_NOT_FOUND = 4040010


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CIRIS Billing test Apple"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _certificate(
    *,
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    ca: bool,
    marker: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=3650))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None if issuer is None else (0 if ca else None)), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
    )
    authority = issuer.public_key() if issuer is not None else public
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority),  # type: ignore[arg-type]
        False,
    )
    if marker is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(marker, b"\x05\x00"), False)
    return builder.sign(issuer_key, hashes.SHA256())


class CertificateChain:
    """A root, an intermediate and a signing leaf, in the shape Apple's verifier requires."""

    def __init__(self, name: str = "Test Apple") -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _certificate(
            subject=f"{name} Root CA", key=self.root_key, issuer=None, issuer_key=self.root_key, ca=True, marker=None
        )
        intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _certificate(
            subject=f"{name} Worldwide Developer Relations",
            key=intermediate_key,
            issuer=self.root,
            issuer_key=self.root_key,
            ca=True,
            marker=INTERMEDIATE_OID,
        )
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf = _certificate(
            subject=f"{name} Mac App Store and iTunes Store Receipt Signing",
            key=self.leaf_key,
            issuer=self.intermediate,
            issuer_key=intermediate_key,
            ca=False,
            marker=LEAF_OID,
        )

    @property
    def root_der(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.DER)

    def x5c(self) -> list[str]:
        return [
            base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
            for cert in (self.leaf, self.intermediate, self.root)
        ]

    def sign(self, payload: dict[str, Any]) -> str:
        """A JWS as Apple signs its transactions and notifications (ES256, the chain in x5c)."""
        return jwt.encode(payload, self.leaf_key, algorithm="ES256", headers={"x5c": self.x5c()})


def _millis(when: datetime.datetime | None = None) -> int:
    return int((when or datetime.datetime.now(datetime.UTC)).timestamp() * 1000)


class AppleFake:
    """Apple's signing chain, the App Store Server API's transaction lookup and Sign in with Apple."""

    def __init__(
        self,
        *,
        bundle_id: str = "ai.ciris.mobile",
        app_apple_id: int = 6_700_000_000,
        port: int = 0,
    ) -> None:
        self.bundle_id = bundle_id
        self.app_apple_id = app_apple_id
        self.chain = CertificateChain()
        self.id_tokens = KeyIssuer()
        # The App Store Server API key the service signs its requests with (a .p8 in real life).
        self.api_key = ec.generate_private_key(ec.SECP256R1())
        self.api_key_id = "FAKEKEY123"
        self.api_issuer_id = str(uuid.uuid4())
        self.transactions: dict[str, dict[str, str]] = {PRODUCTION: {}, SANDBOX: {}}
        self.requests: list[tuple[str, str]] = []
        self.unavailable = False
        self.jwks_unavailable = False
        self._port = port
        self._server: ThreadingHTTPServer | None = None

    # --- minting ------------------------------------------------------------------------
    def transaction_payload(
        self,
        transaction_id: str,
        product_id: str,
        *,
        environment: str = PRODUCTION,
        bundle_id: str | None = None,
        revoked: bool = False,
        quantity: int = 1,
        **fields: Any,
    ) -> dict[str, Any]:
        now = _millis()
        payload: dict[str, Any] = {
            "transactionId": transaction_id,
            "originalTransactionId": transaction_id,
            "bundleId": bundle_id or self.bundle_id,
            "productId": product_id,
            "purchaseDate": now,
            "originalPurchaseDate": now,
            "quantity": quantity,
            "type": "Consumable",
            "inAppOwnershipType": "PURCHASED",
            "signedDate": now,
            "environment": environment,
            "transactionReason": "PURCHASE",
            "storefront": "USA",
            "storefrontId": "143441",
            "price": 990,
            "currency": "USD",
        }
        if revoked:
            payload |= {"revocationDate": now, "revocationReason": 0}
        return payload | fields

    def sign_transaction(self, transaction_id: str, product_id: str, **options: Any) -> str:
        return self.chain.sign(self.transaction_payload(transaction_id, product_id, **options))

    def add_transaction(
        self, transaction_id: str, product_id: str, *, environment: str = PRODUCTION, **options: Any
    ) -> str:
        """Make a purchase Apple knows of: the lookup answers it from now on. Returns its JWS."""
        signed = self.sign_transaction(transaction_id, product_id, environment=environment, **options)
        self.transactions[environment][transaction_id] = signed
        return signed

    def revoke(self, transaction_id: str, *, environment: str = PRODUCTION) -> str:
        """Apple refunded it: the lookup now answers the transaction with a revocationDate."""
        current = jwt.decode(self.transactions[environment][transaction_id], options={"verify_signature": False})
        signed = self.chain.sign(
            {**current, "revocationDate": _millis(), "revocationReason": 0, "signedDate": _millis()}
        )
        self.transactions[environment][transaction_id] = signed
        return signed

    def restore(self, transaction_id: str, *, environment: str = PRODUCTION) -> str:
        """Apple reversed the refund: the lookup answers the transaction without a revocation."""
        current = jwt.decode(self.transactions[environment][transaction_id], options={"verify_signature": False})
        kept = {k: v for k, v in current.items() if k not in ("revocationDate", "revocationReason")}
        signed = self.chain.sign({**kept, "signedDate": _millis()})
        self.transactions[environment][transaction_id] = signed
        return signed

    def notification(
        self,
        notification_type: str,
        signed_transaction: str,
        *,
        subtype: str | None = None,
        notification_uuid: str | None = None,
        environment: str = PRODUCTION,
        bundle_id: str | None = None,
        chain: CertificateChain | None = None,
    ) -> str:
        """An App Store Server Notification V2 `signedPayload` about one signed transaction."""
        payload: dict[str, Any] = {
            "notificationType": notification_type,
            "notificationUUID": notification_uuid or str(uuid.uuid4()),
            "version": "2.0",
            "signedDate": _millis(),
            "data": {
                "appAppleId": self.app_apple_id,
                "bundleId": bundle_id or self.bundle_id,
                "bundleVersion": "1.0",
                "environment": environment,
                "signedTransactionInfo": signed_transaction,
            },
        }
        if subtype:
            payload["subtype"] = subtype
        return (chain or self.chain).sign(payload)

    def resign(self, signed: str) -> str:
        """The transaction as the lookup answers it: Apple signs its answer when it gives it."""
        current = jwt.decode(signed, options={"verify_signature": False})
        return self.chain.sign({**current, "signedDate": max(_millis(), int(current.get("signedDate", 0)))})

    def mint_id_token(
        self,
        sub: str,
        *,
        aud: str,
        email: str | None = None,
        iss: str = APPLE_ID_ISSUER,
        expires_in: int = 600,
        issued_at: int | None = None,
        **claims: Any,
    ) -> str:
        """A Sign in with Apple ID token (RS256; Apple sends its booleans as strings)."""
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
        return self.id_tokens.mint({k: v for k, v in body.items() if v is not None}, kid=kid)

    @property
    def issuer(self) -> KeyIssuer:
        """The ID-token key set (rotate() it to test a key change)."""
        return self.id_tokens

    # --- files an operator's configuration names -----------------------------------------
    def api_key_pem(self) -> bytes:
        return self.api_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write_files(self, directory: Path) -> dict[str, str]:
        """Write the root certificate and the API key; return the settings that name them."""
        directory.mkdir(parents=True, exist_ok=True)
        root, key = directory / "AppleRootCA-test.cer", directory / "SubscriptionKey_test.p8"
        root.write_bytes(self.chain.root_der)
        key.write_bytes(self.api_key_pem())
        return {
            "APPLE_STOREKIT_ROOT_CERTIFICATES": str(root),
            "APPLE_STOREKIT_PRIVATE_KEY_FILE": str(key),
            "APPLE_STOREKIT_KEY_ID": self.api_key_id,
            "APPLE_STOREKIT_ISSUER_ID": self.api_issuer_id,
            "APPLE_STOREKIT_BUNDLE_ID": self.bundle_id,
            "APPLE_STOREKIT_APP_APPLE_ID": str(self.app_apple_id),
            "APPLE_STOREKIT_API_URL": self.url,
            "APPLE_OAUTH_JWKS_URL": self.jwks_url,
        }

    # --- the server -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/auth/keys"

    def start(self) -> AppleFake:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        if scheme != "Bearer":
            return False
        try:
            claims = jwt.decode(token, self.api_key.public_key(), algorithms=["ES256"], audience="appstoreconnect-v1")
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == self.api_issuer_id and claims.get("bid") == self.bundle_id


def _handler(fake: AppleFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            """Play Apple's side of a refund for a walk-through: `/_fake/refund/{id}` and
            `/_fake/refund-reversed/{id}` change what the lookup answers and return the
            notification Apple would send, as the body to post to the service."""
            fake.requests.append(("POST", self.path))
            action, _, transaction_id = self.path.removeprefix("/_fake/").partition("/")
            moves = {"refund": ("REFUND", fake.revoke), "refund-reversed": ("REFUND_REVERSED", fake.restore)}
            if action not in moves or transaction_id not in fake.transactions[PRODUCTION]:
                return self._answer(404, {"error": "unknown action or transaction"})
            kind, move = moves[action]
            return self._answer(200, {"signedPayload": fake.notification(kind, move(transaction_id))})

        def do_GET(self) -> None:
            fake.requests.append(("GET", self.path))
            if self.path == "/auth/keys":
                if fake.jwks_unavailable:
                    return self._answer(503, {"error": "unavailable"})
                return self._answer(200, fake.id_tokens.jwks())
            if fake.unavailable:
                return self._answer(503, {"errorCode": 5000000, "errorMessage": "An unknown error occurred."})
            environment, path = PRODUCTION, self.path
            if path.startswith("/sandbox/"):
                environment, path = SANDBOX, path.removeprefix("/sandbox")
            prefix = "/inApps/v1/transactions/"
            if not path.startswith(prefix):
                return self._answer(404, {"errorCode": 4040000, "errorMessage": "Not found."})
            if not fake.authorized(self.headers.get("Authorization")):
                return self._answer(401, {})
            signed = fake.transactions[environment].get(path.removeprefix(prefix))
            if signed is None:
                return self._answer(
                    404, {"errorCode": TRANSACTION_NOT_FOUND, "errorMessage": "Transaction id not found."}
                )
            return self._answer(200, {"signedTransactionInfo": fake.resign(signed)})

    return Handler


# The name the ID-token tests know it by: one fake plays every part of Apple.
AppleIdFake = AppleFake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8432)
    parser.add_argument("--dir", type=Path, default=Path("var/apple-fake"))
    parser.add_argument("--bundle-id", default="ai.ciris.mobile")
    args = parser.parse_args()
    fake = AppleFake(bundle_id=args.bundle_id, port=args.port).start()
    settings = fake.write_files(args.dir)
    print("Apple fake on", fake.url, "- configure the service with:")
    for name, value in settings.items():
        print(f"  export {name}={value}")
    print("  export APPLE_STOREKIT_ENVIRONMENT=Production APPLE_STOREKIT_ONLINE_CHECKS=0")
    print(f"  export APPLE_OAUTH_CLIENT_IDS={args.bundle_id}")
    transaction_id = "2000000000000001"
    fake.add_transaction(transaction_id, "ai.ciris.mobile.credits_100_v1")
    print(f"A purchase Apple knows of: transaction_id {transaction_id} (credits_100_v1)")
    print("A Sign in with Apple ID token for user 001234.apple-user:")
    print(
        " ",
        fake.mint_id_token(
            "001234.apple-user", aud=args.bundle_id, email="user@privaterelay.appleid.com", expires_in=3600
        ),
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

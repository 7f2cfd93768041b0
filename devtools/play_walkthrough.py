"""Trying Google Play purchases locally: the Google fake, set up for a walk-through.

    python -m devtools.play_walkthrough --port 8431 --service-account /tmp/play-sa.json

starts the fake on 127.0.0.1, writes a service-account key file whose token endpoint is the
fake, records a sample purchase of `credits_100`, and prints the settings to start the
server with, a user's ID token, the curl that verifies the purchase and one that pushes its
refund as Pub/Sub would. The service talks to it only through those settings.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import shlex
import time

from devtools.google_fake import GoogleFake

PACKAGE = "ai.ciris.mobile"
WEB_CLIENT_ID = "ciris-web-client.apps.googleusercontent.com"
PUBSUB_ACCOUNT = "play-rtdn@ciris-fake.iam.gserviceaccount.com"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A Google fake with a sample Play purchase, for a walk-through.")
    parser.add_argument("--port", type=int, default=8431)
    parser.add_argument("--service-account", default="/tmp/ciris-play-service-account.json")
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="where the billing server listens")
    args = parser.parse_args(argv)

    fake = GoogleFake(port=args.port).start()
    with open(args.service_account, "w", encoding="utf-8") as handle:
        json.dump(fake.service_account_info(), handle)
    token = f"walkthrough-{secrets.token_hex(8)}"
    fake.add_purchase(PACKAGE, "credits_100", token)
    id_token = fake.mint_id_token("109876543210987654321", aud=WEB_CLIENT_ID, email="user@example.com")
    verify = {"purchase_token": token, "product_id": "credits_100", "package_name": PACKAGE}
    refund = {"voidedPurchaseNotification": {"purchaseToken": token, "orderId": "", "productType": 2, "refundType": 1}}
    push = {
        "message": {
            "data": base64.b64encode(json.dumps({"packageName": PACKAGE, **refund}).encode()).decode(),
            "messageId": secrets.token_hex(6),
        }
    }
    audience = f"{args.server}/v1/billing/webhooks/google-play"  # the push subscription's audience
    pubsub_token = fake.mint_pubsub_token(aud=audience, email=PUBSUB_ACCOUNT)

    print(f"Google fake on {fake.url}. Start the billing server with:\n")
    print(f"  export GOOGLE_PLAY_SERVICE_ACCOUNT_FILE={args.service_account}")
    print(f"  export GOOGLE_PLAY_API_URL={fake.api_url}")
    print(f"  export GOOGLE_PLAY_PACKAGE_NAMES={PACKAGE}")
    print(f"  export GOOGLE_OAUTH_JWKS_URL={fake.jwks_url}")
    print(f"  export GOOGLE_OAUTH_CLIENT_IDS={WEB_CLIENT_ID}")
    print(f"  export GOOGLE_PLAY_PUBSUB_AUDIENCE={audience}")
    print(f"  export GOOGLE_PLAY_PUBSUB_SERVICE_ACCOUNT={PUBSUB_ACCOUNT}")
    print("\nVerify the sample purchase as the signed-in user (run it twice: the second is a replay):\n")
    print(
        f"  curl -s -X POST {args.server}/v1/billing/google-play/verify -H 'Content-Type: application/json' "
        f"-H 'Authorization: Bearer {id_token}' -d {shlex.quote(json.dumps(verify))}"
    )
    print("\nThen refund it, as Google's Pub/Sub push would:\n")
    print(
        f"  curl -s -X POST {args.server}/v1/billing/webhooks/google-play -H 'Content-Type: application/json' "
        f"-H 'Authorization: Bearer {pubsub_token}' -d {shlex.quote(json.dumps(push))}"
    )
    print("\n(the ID token and the push token are valid for one hour; Ctrl-C stops the fake)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

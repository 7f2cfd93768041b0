"""Run localstripe (a fake Stripe API) on loopback, for tests and local development.

Runs under localstripe's own virtualenv (`.venv-localstripe`, from
requirements-localstripe.txt), never the app's. Compared with localstripe's own CLI it:
- listens on 127.0.0.1 only (the CLI binds every interface);
- keeps its state in memory (the CLI reads and writes /tmp/localstripe.pickle, shared by
  every run on the machine);
- answers GET /v1/account, which real Stripe has and dj-stripe calls while storing a
  webhook (without it every delivery fails with a 500);
- answers GET /v1/disputes/<id> as Stripe does for a dispute it does not know (404,
  resource_missing): localstripe has no disputes, tests sign `charge.dispute.created`
  themselves, and dj-stripe, which fetches the dispute, then skips it as absent.

Usage: .venv-localstripe/bin/python scripts/localstripe_server.py --port 18120
"""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web
from localstripe import resources
from localstripe.server import app

TEST_ACCOUNT = {
    "id": "acct_localstripe000001",
    "object": "account",
    "business_profile": {"name": "CIRIS Billing (localstripe)"},
    "business_type": "company",
    "charges_enabled": True,
    "country": "US",
    "created": 1700000000,
    "default_currency": "usd",
    "details_submitted": True,
    "email": "billing@example.com",
    "metadata": {},
    "payouts_enabled": True,
    "settings": {
        "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
        "dashboard": {"display_name": "CIRIS Billing", "timezone": "Etc/UTC"},
        "payments": {"statement_descriptor": "CIRIS BILLING"},
    },
    "type": "standard",
}


async def account(request: web.Request) -> web.Response:
    return web.json_response(TEST_ACCOUNT)


async def no_such_dispute(request: web.Request) -> web.Response:
    dispute_id = request.match_info["id"]
    error = {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "param": "id",
        "message": f"No such dispute: '{dispute_id}'",
    }
    return web.json_response({"error": error}, status=404)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args()

    # In memory only: no pickle file shared between runs (or between engineers).
    resources.Store.dump_to_disk = lambda self: None
    app.router.add_get("/v1/account", account)
    app.router.add_get("/v1/disputes/{id}", no_such_dispute)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(f"localstripe listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

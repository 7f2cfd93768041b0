"""Run localstripe (a fake Stripe API) on loopback for the tests, under its own virtualenv.

Compared with localstripe's CLI: listens on 127.0.0.1 only, keeps state in memory (the CLI
shares /tmp/localstripe.pickle between every run on the machine), and answers
GET /v1/account, which real Stripe has and dj-stripe calls.

Usage: .venv-localstripe/bin/python tests/localstripe_server.py --port 18240
"""

from __future__ import annotations

import argparse

from aiohttp import web
from localstripe import resources
from localstripe.server import app

ACCOUNT = {"id": "acct_localstripe000001", "object": "account", "country": "US", "default_currency": "usd"}


async def account(request: web.Request) -> web.Response:
    return web.json_response(ACCOUNT)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    resources.Store.dump_to_disk = lambda self: None
    app.router.add_get("/v1/account", account)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

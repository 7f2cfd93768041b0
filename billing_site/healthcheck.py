"""`python -m billing_site.healthcheck`: exit 0 when /health answers 200 (Docker HEALTHCHECK).

It asks the gunicorn on this machine (GUNICORN_BIND's port, default 8000) and waits at
most 4 seconds: a database outage makes /health answer 503, and this exit 1.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
    port = bind.rsplit(":", 1)[-1] if ":" in bind else "8000"
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""`python -m billing_site.healthcheck`: exit 0 when /health answers 200 (Docker HEALTHCHECK).

It asks the gunicorn on this machine (GUNICORN_BIND's port, default 8000) and waits at
most 4 seconds: a database outage makes /health answer 503, and this exit 1.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def host_header() -> str:
    """A Host that Django accepts: the first of DJANGO_ALLOWED_HOSTS (127.0.0.1 is often not one)."""
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(","):
        host = host.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def main() -> int:
    bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
    port = bind.rsplit(":", 1)[-1] if ":" in bind else "8000"
    url = f"http://127.0.0.1:{port}/health"
    request = urllib.request.Request(url, headers={"Host": host_header()})
    try:
        with urllib.request.urlopen(request, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""Gunicorn settings for CIRIS Billing (`make serve`, the Docker image, `make bench`).

Every value can be overridden from the environment (GUNICORN_* below, or gunicorn's own
GUNICORN_CMD_ARGS). Sync workers: each request holds one worker and one database
connection, which is what the money path wants (short transactions, row locks).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from typing import Any

from gunicorn import glogging

wsgi_app = "billing_site.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (containers).

    multiprocessing.cpu_count() counts the host's CPUs: on a 64-core host a container
    limited to 2 would start 129 workers and exhaust PostgreSQL's connections.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = multiprocessing.cpu_count()
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


# The database does the waiting, so more workers than cores keep the CPUs busy.
workers = int(os.environ.get("GUNICORN_WORKERS") or os.environ.get("WEB_CONCURRENCY") or available_cpus() * 2 + 1)
worker_class = "sync"
# Longer than the slowest legitimate request: DB_CONNECT_TIMEOUT_S + DB_STATEMENT_TIMEOUT_MS.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM: stop accepting, let in-flight requests finish (up to this long), then exit.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Behind a load balancer: keep its connections open a little longer than it does.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
backlog = 2048
# Recycle workers now and then (memory growth, leaks in libraries); jitter avoids all at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# Heartbeat files on tmpfs (a disk-backed /tmp can stall workers under load in containers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn 27's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl):
# several servers on a host would fight over it, and the image's user cannot write $HOME.
# Off unless GUNICORN_CONTROL_SOCKET names a path.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
if not control_socket:
    del control_socket
# Behind a proxy, the real client address for the access log comes from it.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips

# --- Logs: JSON lines on stdout (access) and stderr (gunicorn's own and the app's) -----
# GUNICORN_ACCESS_LOG="" turns the access log off (the app still logs money events).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


class JsonLogger(glogging.Logger):
    """Access log lines in the app's JSON shape (one per request), with the request's id."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.cfg.accesslog:  # GUNICORN_ACCESS_LOG="" switches it off
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        fields = {
            # Left by the edge middleware (billing_site.request_context.REQUEST_ID_ENVIRON).
            "request_id": environ.get("billing.request_id"),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        try:
            self.access_log.info("request", extra=fields)
        except Exception:  # a log line must never fail a request
            self.exception("failed to write the access log")


logger_class = JsonLogger
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    # The app's JSON lines (billing_site.logs); access lines are formatted and written by a
    # background thread in each worker.
    "formatters": {"json": {"()": "billing_site.logs.json_formatter"}},
    "handlers": {
        "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        "access_console": {
            "()": "billing_site.logs.QueuedStreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
    },
    # Django's LOGGING takes over the root logger in each worker (same JSON format).
    "root": {"level": "INFO", "handlers": ["error_console"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access_console"], "propagate": False},
    },
}

# --- Prometheus multiprocess mode ----------------------------------------------------------
# Each worker writes its metric values to files in this directory; /metrics merges them.
# It must be set before a worker imports prometheus_client, hence here, in the master.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="billing-metrics-")


def on_starting(server: Any) -> None:
    """A fresh directory per start: counters from a previous run must not leak into this one."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
    os.makedirs(directory, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """Move what loading the app made (modules, classes, settings, URL patterns) out of the
    garbage collector's generations, as it never becomes garbage: otherwise each full
    collection walks all of it again, on the request path. Objects made later are collected
    as usual."""
    import gc

    gc.collect()
    gc.freeze()

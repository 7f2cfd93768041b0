"""Log lines formatted and written off the request path.

The request thread only tags a record (the handler's filters: the request id is a
contextvar, so it must be read there), renders its message and puts it on a queue; a
background thread per process formats it (JSON) and writes it. In a sync gunicorn worker
that thread runs while the request thread waits on PostgreSQL, so a log line no longer
adds its formatting and its write() to a request's latency.

The thread is started when the handler is made (Django's LOGGING, gunicorn's
logconfig_dict) and made again in a forked child (gunicorn workers fork from the master:
threads do not survive a fork). Lines still queued are written at exit (atexit); a worker
killed with SIGKILL loses what it had not written yet. Closing the handler writes what is
queued and keeps it working (dictConfig closes all handlers when it configures again).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sys
import weakref
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO

_live: weakref.WeakSet[BackgroundStreamHandler] = weakref.WeakSet()


class BackgroundStreamHandler(QueueHandler):
    """A StreamHandler whose formatting and writing happen on a background thread."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(queue.SimpleQueue())
        self.target = logging.StreamHandler(stream if stream is not None else sys.stderr)
        self.listener: QueueListener | None = None
        self._start()
        _live.add(self)

    def _start(self) -> None:
        self.listener = QueueListener(self.queue, self.target)
        self.listener.start()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        # dictConfig's "formatter" is for the lines written: the thread formats.
        self.target.setFormatter(fmt)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Freeze what cannot wait: the message's arguments and any traceback, as text."""
        if not isinstance(record.msg, dict):  # a dict is a structured line (JsonLineFormatter)
            record.msg = record.getMessage()
            record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record

    def flush(self) -> None:
        """Wait until every queued line is written (tests, shutdown)."""
        if self.listener is not None and self.listener._thread is not None:
            self.listener.stop()
            self._start()
        self.target.flush()

    def close(self) -> None:
        # Write what is queued but keep the thread: dictConfig closes every existing handler
        # when Django configures its logging in a gunicorn worker, and gunicorn's access
        # logger goes on using this one. The thread ends at exit (atexit).
        self.flush()
        super().close()

    def _after_fork(self) -> None:
        # The parent's thread does not exist here and its queue may hold its lines: start afresh.
        self.queue = queue.SimpleQueue()
        self._start()


class JsonLineFormatter(logging.Formatter):
    """A record whose message is a dict becomes one JSON line, with `time` from the record.

    For gunicorn's access log: the worker hands over the fields; serializing happens here,
    on the background thread.
    """

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, dict):
            line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")}
            line.update(record.msg)
            return json.dumps(line)
        return super().format(record)


def _restart_all_after_fork() -> None:
    for handler in list(_live):
        handler._after_fork()


def _stop_all() -> None:
    for handler in list(_live):
        if handler.listener is not None and handler.listener._thread is not None:
            handler.listener.stop()


def background_stream_handler(stream: Any = None) -> BackgroundStreamHandler:
    """Factory for dictConfig ("()"), so a config can name a stream like ext://sys.stdout."""
    return BackgroundStreamHandler(stream)


os.register_at_fork(after_in_child=_restart_all_after_fork)
atexit.register(_stop_all)

"""Log lines as JSON (or console text), formatted and written by a background thread.

The request thread only tags a record with the request id (a filter on the handler: the id
is a contextvar, readable only on that thread) and puts it on a queue: logging's
QueueHandler. A QueueListener thread per process formats it and writes it through a
StreamHandler. Gunicorn forks its workers from the master, and threads do not survive a
fork, so each forked process starts a listener of its own. What is queued is written at
exit and whenever the handler is flushed or closed.
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import queue
import weakref
from logging.handlers import QueueHandler, QueueListener
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

_live: weakref.WeakSet[QueuedStreamHandler] = weakref.WeakSet()
_tracebacks = logging.Formatter()


def json_formatter() -> JsonFormatter:
    """One JSON object per line: `level`, `logger`, `message`, `request_id`, every field given
    with `extra=`, `exc_info` with a traceback, and `time` (ISO 8601, UTC)."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


class QueuedStreamHandler(QueueHandler):
    """A QueueHandler whose listener writes to `stream` (stderr by default).

    The formatter given to this handler (dictConfig's `formatter`) is the stream
    handler's: it runs on the listener's thread, not on the request's.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(queue.SimpleQueue())
        self.target = logging.StreamHandler(stream)
        self._start_listener()
        _live.add(self)

    def _start_listener(self) -> None:
        self.listener = QueueListener(self.queue, self.target)
        self.listener.start()
        self._running = True

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        self.target.setFormatter(fmt)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy that can wait: its message rendered now (the arguments may change later)
        and its traceback as text; the request id the filter added stays on it."""
        record = copy.copy(record)
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = _tracebacks.formatException(record.exc_info)
            record.exc_info = None
        return record

    def emit(self, record: logging.LogRecord) -> None:
        if self._running:
            super().emit(record)
        else:  # the process is exiting and its listener has stopped: write the line here
            self.target.handle(self.prepare(record))

    def flush(self) -> None:
        """Write everything queued now (tests, exit): the listener drains the queue and stops,
        then a new one starts."""
        with self.lock:  # type: ignore[union-attr]  # (made by Handler.__init__)
            if self._running:
                self.listener.stop()
                self.listener.start()

    def close(self) -> None:
        # Flushed, but still writing: dictConfig closes every handler when Django configures
        # logging in a worker, and gunicorn's access logger goes on using its handler.
        self.flush()
        super().close()

    def stop(self) -> None:
        """Write what is queued and stop the listener; later lines are written synchronously."""
        with self.lock:  # type: ignore[union-attr]
            if self._running:
                self._running = False
                self.listener.stop()


def _after_fork_in_child() -> None:
    # The parent's listener thread does not exist here, and its queued lines are the parent's.
    for handler in list(_live):
        if handler._running:
            handler.queue = queue.SimpleQueue()
            handler._start_listener()


def _stop_all() -> None:
    for handler in list(_live):
        handler.stop()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_stop_all)

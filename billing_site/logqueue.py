"""Log lines formatted and written off the request path, in batches.

The request thread only tags a record (the handler's filters: the request id is a
contextvar, so it must be read there), renders its message and appends it to a buffer.
Nothing is signalled per line: a background thread per process wakes every
LOG_FLUSH_SECONDS (50 ms), formats what has gathered (JSON) and writes it in one write().
A queue that wakes its reader on every line (logging's QueueHandler) hands the GIL to that
thread on each request: measured, 5% of a worker's samples stalled in `put` (bench/RESULTS.md).
In a sync gunicorn worker the thread mostly runs while the request thread waits on
PostgreSQL.

The thread is started when the handler is made (Django's LOGGING, gunicorn's
logconfig_dict) and made again in a forked child (gunicorn workers fork from the master:
threads do not survive a fork). A burst of more than _WAKE_AT lines wakes it early. What is
buffered is written at exit (atexit) and whenever the handler is flushed or closed
(dictConfig closes every handler when Django configures logging in a worker, and gunicorn's
access logger goes on using its handler: closing writes and keeps working). A worker killed
with SIGKILL loses at most its last 50 ms of lines.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from billing_site.request_context import RequestIdLogFilter, request_id_var

LOG_FLUSH_SECONDS = 0.05
_WAKE_AT = 1000
_live: weakref.WeakSet[BackgroundStreamHandler] = weakref.WeakSet()


class BackgroundStreamHandler(logging.Handler):
    """A StreamHandler whose formatting and writing happen on a background thread."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._start()
        _live.add(self)

    def _start(self) -> None:
        self._buffer: deque[logging.LogRecord] = deque()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: deque appends are atomic
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):
            record = rv
        if rv:
            self.emit(record)
        return bool(rv)

    def emit(self, record: logging.LogRecord) -> None:
        """Freeze what cannot wait (the message's arguments, any traceback) and buffer it."""
        try:
            if not isinstance(record.msg, dict):  # a dict is a structured line (JsonLineFormatter)
                record.msg = record.getMessage()
                record.args = None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            self._buffer.append(record)
            if len(self._buffer) > _WAKE_AT:
                self._wake.set()
        except Exception:
            self.handleError(record)

    def append_fields(self, fields: dict[str, Any]) -> None:
        """Buffer a structured line (for JsonLineFormatter) without making a LogRecord.

        For gunicorn's access log, one line per request: through logging, the record's
        making and handling cost the request thread 75k instructions, the line's
        formatting on this thread 61k (bench/RESULTS.md). Used only when this handler's
        formatter is JsonLineFormatter, which reads nothing but the fields and the time.
        """
        self._buffer.append(_FieldsLine(fields, time.time()))  # type: ignore[arg-type]
        if len(self._buffer) > _WAKE_AT:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(LOG_FLUSH_SECONDS)
            self._wake.clear()
            self._write_buffered()

    def _write_buffered(self) -> None:
        with self._write_lock:
            lines = []
            while self._buffer:
                record = self._buffer.popleft()
                try:
                    lines.append(self.format(record))
                except Exception:
                    self.handleError(record)
            if lines:
                try:
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
                except Exception:
                    self.handleError(record)

    def flush(self) -> None:
        """Write everything buffered now (tests, shutdown)."""
        self._write_buffered()

    def close(self) -> None:
        self.flush()
        super().close()

    def _after_fork(self) -> None:
        # The parent's thread does not exist here, and its buffered lines are the parent's.
        self._start()

    def _stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._write_buffered()


class _FieldsLine:
    """What JsonLineFormatter reads of a record: its fields (`msg`) and its time."""

    __slots__ = ("args", "created", "msg")

    def __init__(self, fields: dict[str, Any], created: float):
        self.msg, self.created, self.args = fields, created, None


# A LogRecord's own attributes; anything else on a record came with `extra=` and is a key
# of its line (the request_id filter's included).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _json_default(value: Any) -> str:
    isoformat = getattr(value, "isoformat", None)  # datetimes, dates, times
    return isoformat() if callable(isoformat) else str(value)  # UUIDs, Decimals, anything else


# The standard library's encoder: every line's fallback, and the shape orjson's lines keep.
_stdlib_encode = json.JSONEncoder(default=_json_default).encode
# Datetimes and dataclasses go through _json_default (isoformat, str), as in the standard
# library's lines.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _encode(line: dict[str, Any]) -> str:
    """A line as JSON, in ASCII: orjson (encoding a money-event or access line took the
    standard library 7.3 us, orjson 0.6 us, and a replay writes two; bench/NOTES.md). A
    line orjson cannot encode (an integer over 64 bits, a cycle), or whose text is not
    ASCII, is encoded by the standard library, which escapes non-ASCII characters as it
    always did: a log line never depends on the stream's encoding."""
    try:
        text = orjson.dumps(line, default=_json_default, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return _stdlib_encode(line)
    return text if text.isascii() else _stdlib_encode(line)


# The last whole second formatted, as one tuple (one assignment: safe across threads).
_second: tuple[int, str] = (0, "")


def iso_millis(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, with the
    date and time of day made once per second: a line's time cost 4.9 us, this 1.5 us, and
    every access line and money-event line has one (bench/NOTES.md). The microseconds are
    rounded as datetime rounds them (half to even), then cut to milliseconds as isoformat
    cuts them; tests/test_logqueue.py holds the two equal."""
    global _second
    second = int(created)
    micros = round((created - second) * 1_000_000)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    cached, text = _second
    if cached != second or not text:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (second, text)
    return f"{text}.{micros // 1000:03d}+00:00"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: `time` (ISO 8601, UTC), `level`, `logger`, `message`,
    `request_id`, then every field given with `extra=`, and `exc_info` with the traceback.

    A record whose message is a dict (gunicorn's access log: the worker hands over the
    fields) becomes `time` and those fields. Serializing happens on the log thread. The
    app's lines were python-json-logger's: it reads the same record through a parsed
    format string and its own encoder, 79k instructions a money-event line against this
    formatter's 57k (bench/RESULTS.md); one formatter now writes every JSON line.
    """

    def format(self, record: logging.LogRecord) -> str:
        time_ = iso_millis(record.created)
        if isinstance(record.msg, dict):
            return _encode({"time": time_, **record.msg})
        extra = ((k, v) for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES and k != "time")
        request_id = getattr(record, "request_id", None)
        line = {"time": time_, **_line(record.levelname, record.name, record.getMessage(), request_id, extra)}
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return _encode(line)


def _line(level: str, logger: str, message: str, request_id: Any, extra: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON line's fields but its time: its own keys first, then the extra ones (which
    cannot replace them), for a record and for a line handed over alike."""
    line = {"level": level, "logger": logger, "message": message, "request_id": request_id}
    for key, value in extra:
        line.setdefault(key, value)
    return line


def fields_handler(logger: logging.Logger, level: int) -> BackgroundStreamHandler | None:
    """The one handler a `level` line of `logger` reaches, if it can take the line's fields.

    That is when the line is enabled, no logger on its way has filters, and the only
    handler on its way (through propagation) is a BackgroundStreamHandler writing
    JsonLineFormatter lines, with no filter but the request id's (the caller adds that
    field). Anything else (the console format, pytest's caplog, another handler) gets None
    and is logged as usual.
    """
    if not logger.isEnabledFor(level):
        return None
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None:
                return None
            found = handler
        current = current.parent if current.propagate else None
    if (
        type(found) is not BackgroundStreamHandler
        or type(found.formatter) is not JsonLineFormatter
        or found.level > level
        or any(type(f) is not RequestIdLogFilter for f in found.filters)
    ):
        return None
    return found


def log_fields(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, message, extra=fields)`, the same JSON line, without a LogRecord
    where fields_handler allows it: for the money event of every charge and replay.
    Through logging such a line cost 61k instructions on the request thread and 78k to
    format and write; handed over, 21k and 62k (bench/NOTES.md)."""
    handler = fields_handler(logger, level)
    if handler is None:
        logger.log(level, message, extra=fields, stacklevel=2)
        return
    request_id = request_id_var.get()
    handler.append_fields(_line(logging.getLevelName(level), logger.name, message, request_id, fields.items()))


def _restart_all_after_fork() -> None:
    for handler in list(_live):
        handler._after_fork()


def _stop_all() -> None:
    for handler in list(_live):
        handler._stop()


def background_stream_handler(stream: Any = None) -> BackgroundStreamHandler:
    """Factory for dictConfig ("()"), so a config can name a stream like ext://sys.stdout."""
    return BackgroundStreamHandler(stream)


os.register_at_fork(after_in_child=_restart_all_after_fork)
atexit.register(_stop_all)

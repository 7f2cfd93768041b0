"""Log lines are formatted and written by a background thread, with what the request knew."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from billing_site.logs import QueuedStreamHandler, json_formatter
from billing_site.request_context import RequestIdLogFilter, request_id_var


@pytest.fixture
def queued():
    """A production handler (the JSON formatter, the request id filter) on a buffer."""
    stream = io.StringIO()
    handler = QueuedStreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdLogFilter())
    yield handler, stream
    handler.stop()


def a_logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(text) for text in stream.getvalue().splitlines()]


def test_a_line_keeps_the_request_id_and_arguments_of_the_moment_it_was_logged(queued):
    handler, stream = queued
    logger = a_logger(handler, "tests.logs.request")
    token = request_id_var.set("req-7")
    amount = [100]
    logger.info("charge of %s", amount, extra={"account_id": "a-1", "amount_minor": 100})
    request_id_var.reset(token)  # the request ended before the thread wrote the line
    amount.append(5)

    handler.flush()

    (line,) = lines(stream)
    assert line.pop("time").endswith("+00:00")
    assert line == {
        "level": "INFO",
        "logger": "tests.logs.request",
        "message": "charge of [100]",
        "request_id": "req-7",
        "account_id": "a-1",
        "amount_minor": 100,
    }


def test_a_traceback_is_written_with_the_line(queued):
    handler, stream = queued
    logger = a_logger(handler, "tests.logs.error")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it failed")

    handler.flush()

    (line,) = lines(stream)
    assert (line["message"], line["level"]) == ("it failed", "ERROR")
    assert "ValueError: boom" in line["exc_info"]


def test_a_line_is_ascii_json_whatever_its_fields_hold(queued):
    handler, stream = queued
    fields = {
        "big": 2**70,
        "charge_id": uuid.UUID("d9371535-77e4-47e4-a156-94e58e9e89e5"),
        "amount": Decimal("1.50"),
        "at": datetime(2026, 12, 1, 16, 53, 57, 438000, tzinfo=UTC),
    }
    a_logger(handler, "tests.logs.ascii").info("café ☕", extra=fields)

    handler.flush()

    assert stream.getvalue().isascii()
    (line,) = lines(stream)
    assert (line["message"], line["big"], line["charge_id"], line["amount"], line["at"]) == (
        "café ☕",
        2**70,
        "d9371535-77e4-47e4-a156-94e58e9e89e5",
        "1.50",
        "2026-12-01T16:53:57.438000+00:00",
    )


def test_lines_are_written_by_the_thread_without_anyone_flushing(queued):
    handler, stream = queued
    a_logger(handler, "tests.logs.thread").info("one")

    deadline = time.monotonic() + 5
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)

    assert lines(stream)[0]["message"] == "one"


class WriterRecordingStream(io.StringIO):
    """Remembers which thread wrote each piece."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: list[str] = []

    def write(self, text: str) -> int:
        self.writers.append(threading.current_thread().name)
        return super().write(text)


def test_a_closed_handler_still_writes_from_its_thread():
    """dictConfig closes the handlers gunicorn's access logger keeps using."""
    stream = WriterRecordingStream()
    handler = QueuedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = a_logger(handler, "tests.logs.closed")
    logger.info("before")
    handler.close()
    logger.info("after")

    handler.flush()

    assert stream.getvalue() == "before\nafter\n"
    assert threading.current_thread().name not in stream.writers  # never on the request's thread
    handler.stop()


def test_a_forked_worker_writes_its_lines_through_its_own_thread(tmp_path):
    path = tmp_path / "child.log"
    with open(path, "w") as stream:
        handler = QueuedStreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = a_logger(handler, "tests.logs.fork")
        logger.info("from the master")
        handler.flush()
        pid = os.fork()
        if pid == 0:  # the child: like a gunicorn worker after the master forked it
            logger.info("%d from the worker", os.getpid())
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and "worker" not in Path(path).read_text():
                time.sleep(0.01)  # written by the child's own thread, nobody flushing
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        handler.stop()

    assert os.waitstatus_to_exitcode(status) == 0
    assert path.read_text() == f"from the master\n{pid} from the worker\n"


def test_lines_still_queued_are_written_at_exit(tmp_path):
    script = (
        "import logging, sys\n"
        "from billing_site.logs import QueuedStreamHandler, json_formatter\n"
        "handler = QueuedStreamHandler(sys.stdout)\n"
        "handler.setFormatter(json_formatter())\n"
        "logger = logging.getLogger('exit')\n"
        "logger.addHandler(handler)\n"
        "for i in range(500):\n"
        "    logger.warning('line %d', i)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent
    )

    assert result.returncode == 0, result.stderr
    messages = [json.loads(line)["message"] for line in result.stdout.splitlines()]
    assert messages == [f"line {i}" for i in range(500)]

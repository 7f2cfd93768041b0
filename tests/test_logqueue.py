"""Log lines are formatted and written by a background thread in batches, with what the request knew."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from accounts.identity import Identity
from billing_site.logqueue import BackgroundStreamHandler, JsonLineFormatter, fields_handler, log_fields
from billing_site.request_context import RequestIdLogFilter, request_id_var


def production_handler(stream: io.StringIO) -> BackgroundStreamHandler:
    handler = BackgroundStreamHandler(stream)
    handler.setFormatter(import_string(settings.LOGGING["formatters"]["json"]["()"])())  # the production one
    handler.addFilter(RequestIdLogFilter())
    return handler


def a_logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_a_line_keeps_the_request_id_and_arguments_of_the_moment_it_was_logged():
    stream = io.StringIO()
    handler = production_handler(stream)
    logger = a_logger(handler, "tests.logqueue.request")
    token = request_id_var.set("req-7")
    amount = [100]
    logger.info("charge of %s", amount, extra={"account_id": "a-1"})
    request_id_var.reset(token)  # the request ended before the thread wrote the line
    amount.append(5)

    handler.flush()

    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["request_id"] == "req-7"
    assert line["message"] == "charge of [100]"
    assert line["account_id"] == "a-1"
    handler.close()


def test_a_traceback_is_written_with_the_line():
    stream = io.StringIO()
    handler = production_handler(stream)
    logger = a_logger(handler, "tests.logqueue.error")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it failed")

    handler.flush()

    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["message"] == "it failed"
    assert "ValueError: boom" in line["exc_info"]
    handler.close()


def test_access_fields_become_one_json_line_with_a_time():
    stream = io.StringIO()
    handler = BackgroundStreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    a_logger(handler, "tests.logqueue.access").info({"path": "/health", "status": 200})

    handler.flush()

    line = json.loads(stream.getvalue())
    assert (line["path"], line["status"]) == ("/health", 200)
    assert line["time"].endswith("+00:00")
    handler.close()


def test_a_forked_worker_writes_its_lines_through_its_own_thread(tmp_path):
    path = tmp_path / "child.log"
    with open(path, "w") as stream:
        handler = BackgroundStreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = a_logger(handler, "tests.logqueue.fork")
        pid = os.fork()
        if pid == 0:  # the child: like a gunicorn worker after the master forked it
            logger.info("%d from the worker", os.getpid())
            handler.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        handler.close()

    assert os.waitstatus_to_exitcode(status) == 0
    assert path.read_text() == f"{pid} from the worker\n"


def test_lines_are_written_by_the_thread_without_anyone_flushing():
    import time

    stream = io.StringIO()
    handler = BackgroundStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    a_logger(handler, "tests.logqueue.thread").info("one")

    deadline = time.monotonic() + 5
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)

    assert stream.getvalue() == "one\n"
    handler.close()


def test_fields_handed_over_without_a_record_make_the_same_line():
    stream = io.StringIO()
    handler = BackgroundStreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    a_logger(handler, "tests.logqueue.fields").info({"path": "/v1/billing/charges", "status": 409})
    handler.append_fields({"path": "/v1/billing/charges", "status": 409})

    handler.flush()

    through_logging, handed_over = (json.loads(line) for line in stream.getvalue().splitlines())
    assert handed_over.pop("time").endswith("+00:00")
    assert through_logging.pop("time").endswith("+00:00")
    assert handed_over == through_logging == {"path": "/v1/billing/charges", "status": 409}
    handler.close()


def test_an_event_handed_over_as_fields_makes_the_line_logging_makes():
    stream = io.StringIO()
    handler = production_handler(stream)
    logger = a_logger(handler, "tests.logqueue.event")
    token = request_id_var.set("req-9")
    fields = {"event": "charge", "outcome": "duplicate", "amount_minor": 100}
    logger.info("charge replayed", extra=fields)
    assert fields_handler(logger, logging.INFO) is handler
    log_fields(logger, logging.INFO, "charge replayed", fields)
    request_id_var.reset(token)

    handler.flush()

    through_logging, handed_over = (json.loads(line) for line in stream.getvalue().splitlines())
    assert through_logging.pop("time").endswith("+00:00")
    assert handed_over.pop("time").endswith("+00:00")
    assert list(handed_over.items()) == list(through_logging.items())
    assert handed_over["request_id"] == "req-9"
    handler.close()


def test_an_event_goes_through_logging_where_another_handler_listens(caplog):
    stream = io.StringIO()
    handler = production_handler(stream)
    logger = a_logger(handler, "tests.logqueue.listened")
    logger.propagate = True  # caplog's handler is on the root logger
    assert fields_handler(logger, logging.INFO) is None

    with caplog.at_level(logging.INFO, logger="tests.logqueue.listened"):
        log_fields(logger, logging.INFO, "charge created", {"amount_minor": 100})
    handler.flush()

    (record,) = caplog.records
    assert (record.getMessage(), record.amount_minor, record.funcName) == (
        "charge created",
        100,
        "test_an_event_goes_through_logging_where_another_handler_listens",
    )
    assert json.loads(stream.getvalue())["amount_minor"] == 100
    assert fields_handler(logger, logging.DEBUG) is None  # not enabled
    handler.close()


def test_a_lines_time_is_the_one_datetime_writes_to_the_millisecond():
    import random
    from datetime import UTC, datetime

    from billing_site.logqueue import iso_millis

    rng = random.Random(12)
    moments = [1764608037.0, 1764608037.9995, 1764608037.9999996, 1764608038.0004999, 1764608037.4389996]
    moments += [rng.uniform(1.6e9, 2.2e9) for _ in range(20_000)]
    for moment in moments:
        expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
        assert iso_millis(moment) == expected, moment


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "café ☕ \u2028",  # not ASCII: escaped as the standard library escapes it
        2**70,  # over 64 bits: orjson refuses, the standard library writes it
        datetime(2026, 12, 1, 16, 53, 57, 438000, tzinfo=UTC),
        uuid.UUID("d9371535-77e4-47e4-a156-94e58e9e89e5"),
        Decimal("1.50"),
        {1: "non-string key"},
        [1, None, True, 2.5],
        Identity(oauth_provider="oauth:google", external_id="a@example.com"),  # a dataclass: str()
    ],
)
def test_a_line_reads_back_as_the_standard_librarys_line_and_is_ascii(value):
    from billing_site.logqueue import _encode, _stdlib_encode

    line = _encode({"message": "m", "field": value})
    assert line.isascii()
    assert json.loads(line) == json.loads(_stdlib_encode({"message": "m", "field": value}))

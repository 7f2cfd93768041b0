"""Run requests truly in parallel: each thread has its own PostgreSQL connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


def run_in_parallel(count: int, request: Callable[[int], T]) -> list[T]:
    """Call request(0..count-1) from `count` threads released at the same instant."""
    barrier = threading.Barrier(count)
    results: list[T | BaseException | None] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = request(index)
        except BaseException as exc:  # surfaced below, in the test's thread
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]

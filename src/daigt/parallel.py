"""Models side by side: one spawned process per model, ``jobs`` at a time.

The CPU families are single-threaded, so on K cores K models finish in about the time of the slowest pair
rather than of all in a row. Used by fold training and by the generalization protocols.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

T = TypeVar("T")
J = TypeVar("J")
PARENT_CHECK_SECONDS = 1.0  # how often a worker looks whether the process that started it is still there


def _die_with(parent: int) -> None:
    """Worker initializer: exit as soon as the parent is gone (kill -9 gives it no chance to stop us), rather
    than train on and then wait forever on a result pipe nobody reads."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def map_models(work: Callable[[J], T], names: Sequence[J], jobs: int) -> Iterator[T]:
    """``work(name)`` for every model name (or job), in worker processes when ``jobs`` > 1; results as they
    finish. Jobs are handed out in order: list the slowest first.

    ``work`` must be picklable (a module-level function, or a functools.partial of one)."""
    if jobs <= 1 or len(names) <= 1:
        for name in names:
            yield work(name)
        return
    context = multiprocessing.get_context("spawn")
    workers = min(jobs, len(names))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(work, name) for name in names]
        for future in as_completed(futures):
            yield future.result()

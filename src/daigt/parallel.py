"""Models side by side: one spawned process per model, ``jobs`` at a time, within a memory budget if given
(training); or threads of one process (``map_threads``: scoring, where the models are already in memory).

The CPU families are single-threaded, so on K cores K models finish in about the time of the slowest pair
rather than of all in a row. Used by fold training and by the generalization protocols. At competition size
two models side by side can exhaust the machine, so a budget (``--max-memory``) holds a model back until its
estimated peak fits beside the ones running; one that does not fit even alone runs alone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import TypeVar

from daigt.errors import DaigtError

T = TypeVar("T")
J = TypeVar("J")
AUTO_SHARE = 0.9  # --max-memory auto: this share of the memory free at the start, the rest for the OS and blend
PARENT_CHECK_SECONDS = 1.0  # how often a worker looks whether the process that started it is still there


def _die_with(parent: int) -> None:
    """Worker initializer: exit as soon as the parent is gone (kill -9 gives it no chance to stop us), rather
    than train on and then wait forever on a result pipe nobody reads. Ctrl-C is the parent's to handle: it
    stops the workers itself (``_spawn_pool``), so they print nothing of their own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def map_models(
    work: Callable[[J], T],
    names: Sequence[J],
    jobs: int,
    budget_mb: float | None = None,
    estimates_mb: Mapping[J, float | None] | None = None,
) -> Iterator[T]:
    """``work(name)`` for every model name (or job), in worker processes when ``jobs`` > 1; results as they
    finish. Jobs are handed out in order (list the slowest first), each as soon as a worker is free and, with
    ``budget_mb``, its estimated peak (``estimates_mb``; None: unknown, taken as the whole budget) fits beside
    the estimates of those running. Nothing running means the next one starts whatever its estimate.

    ``work`` must be picklable (a module-level function, or a functools.partial of one)."""
    if jobs <= 1 or len(names) <= 1:
        for name in names:
            yield work(name)
        return
    estimates = estimates_mb or {}

    def need(name: J) -> float:
        known = estimates.get(name)
        return known if known is not None and budget_mb is not None else (budget_mb or 0.0)

    workers = min(jobs, len(names))
    pending: list[J] = list(names)
    running: dict[Future, J] = {}
    with _spawn_pool(workers) as pool:
        while pending or running:
            in_use = sum(need(name) for name in running.values())
            for name in list(pending):
                if len(running) >= workers:
                    break
                if budget_mb is None or not running or in_use + need(name) <= budget_mb:
                    running[pool.submit(work, name)] = name
                    pending.remove(name)
                    in_use += need(name)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                yield future.result()


def map_in_order(work: Callable[[J], T], items: Sequence[J], jobs: int) -> list[T]:
    """``[work(item) for item in items]`` computed in ``jobs`` spawned processes (same order, same values)."""
    with _spawn_pool(jobs) as pool:
        return list(pool.map(work, items))


def map_threads(work: Callable[[J], T], items: Sequence[J], threads: int | None) -> dict[J, T]:
    """``{item: work(item)}``, ``threads`` at a time (None: one per core), in threads of this process: numpy,
    scipy, pandas, hashlib and tokenizers release the GIL in their inner loops, so two models' scoring (or
    loading) overlap on two cores at no memory cost beyond each model's own."""
    workers = min(len(items), threads or os.cpu_count() or 1)
    if workers <= 1:
        return {item: work(item) for item in items}
    with ThreadPoolExecutor(workers, thread_name_prefix="model") as pool:
        return dict(zip(items, pool.map(work, items), strict=True))


@contextlib.contextmanager
def _spawn_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Fresh interpreters (spawn: safe with threads and torch), each exiting when this process is gone. Left
    by an exception (Ctrl-C, SIGTERM, a failed model), the workers are stopped at once rather than waited for."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        for process in list((pool._processes or {}).values()):  # no public way to stop running work
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def available_memory_mb() -> float | None:
    """Memory the kernel says new processes can use without swapping (Linux MemAvailable); None elsewhere."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def parse_memory(value: str, available: Callable[[], float | None] = available_memory_mb) -> float:
    """``--max-memory`` in MiB: ``12G``, ``8000M``, a plain number of MiB, or ``auto`` (90 % of what is free)."""
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    if text == "AUTO":
        free = available()
        if free is None:
            raise DaigtError("--max-memory auto: free memory is unknown on this system; give a size such as 12G")
        return AUTO_SHARE * free
    scale = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}.get(text[-1:])
    try:
        size = float(text[:-1] if scale else text) * (scale or 1.0)
    except ValueError:
        size = -1.0
    if size <= 0:
        raise DaigtError(f"--max-memory {value!r}: give a size such as 12G or 8000M, or 'auto'")
    return size

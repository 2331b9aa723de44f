"""The one channel a run speaks through (results, stage lines, warnings, bars): verbosity decided in one place.

- ``say``: a result line (a fold's AUC, the blend's figures) on stdout, always; ``aside=True`` puts it on stderr,
  for a command whose stdout carries data (predict's CSV).
- ``stage``: what a long step is doing ("[tfidf_bpe] counting n-grams of 10,342 essays"), on stderr; off with
  ``--quiet`` (or ``--no-progress``). ``detail``: more of the same, only with ``--verbose``.
- ``warn``: "WARNING: ..." on stderr, always. ``error``: the one line a failed command ends with (cli_entry).
- ``bar``: a tqdm progress bar on stderr, shown once a step lasts ``BAR_DELAY_S``; off with ``--quiet``.

Entry points set the level once (``configure``, from cli_options' ``--quiet`` / ``--no-progress`` /
``--verbose``). It travels in the environment, so the worker processes of ``--jobs`` speak alike.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

QUIET, NORMAL, VERBOSE = 0, 1, 2
ENV = "DAIGT_OUTPUT"  # the level, inherited by spawned workers
BAR_DELAY_S = 2.0  # a step shorter than this shows no bar at all (no "0essay [00:00, ?essay/s]")
T = TypeVar("T")


def configure(level: int = NORMAL) -> None:
    """Set this process's (and its future workers') verbosity: bars and stage lines go together."""
    os.environ[ENV] = str(level)


def level() -> int:
    value = os.environ.get(ENV, "")
    return int(value) if value in {str(QUIET), str(NORMAL), str(VERBOSE)} else NORMAL


def bars_on() -> bool:
    return level() > QUIET


def say(line: str, aside: bool = False) -> None:
    print(line, file=sys.stderr if aside else sys.stdout, flush=True)


def stage(line: str) -> None:
    if level() >= NORMAL:
        print(line, file=sys.stderr, flush=True)


def detail(line: str) -> None:
    if level() >= VERBOSE:
        print(line, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr, flush=True)


def error(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def bar(iterable: Iterable[T] | None = None, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A progress bar on stderr; ``enabled``: the caller's own condition (e.g. rank 0 only) on top of the level."""
    from tqdm.auto import tqdm  # here: the channel itself needs the standard library only (error lines)

    kwargs.setdefault("delay", BAR_DELAY_S)
    return tqdm(iterable, disable=not (enabled and bars_on()), file=sys.stderr, **kwargs)

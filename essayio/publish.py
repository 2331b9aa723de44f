"""Publish several outputs as one unit: every one from the same run, or none of them.

A run writes its outputs into a staging folder, then a journal naming every move (staged -> final) is written
in one rename, then the moves are made and the journal removed. A run killed before the journal exists leaves
the published outputs untouched; one killed during the moves is completed by ``recover`` at the next start
(roll forward), so a reader never finds a submission from one run beside an ensemble from another for longer
than until the next run. Leftover staging folders and temp files of killed runs are removed by ``recover``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from essayio import atomic

JOURNAL = ".publish-journal.json"
STAGING_PREFIX = ".staging-"
STALE_TEMP_SECONDS = 600  # temp files of atomic writes older than this belong to a dead run
TEMP_PID = re.compile(r"\.pid(\d+)\.")  # atomic.temp_prefix: the writer's pid in a temp file's name


class Stage:
    """Where one run writes its outputs before they are published together."""

    def __init__(self, home: Path, run_id: str) -> None:
        self.home, self.run_id = home, run_id
        self.dir = home / f"{STAGING_PREFIX}{run_id}-{os.getpid()}"
        self.outside: list[tuple[Path, Path]] = []

    def folder_for(self, target: Path) -> Path:
        """A staged folder for an output that lives outside ``home`` (e.g. ``ensemble/``), moved with the rest."""
        staged = self.dir / ".outside" / str(len(self.outside))
        self.outside.append((staged, Path(target).resolve()))
        return staged

    def moves(self) -> list[tuple[str, str]]:
        inside = [(str(e), str(self.home / e.name)) for e in sorted(self.dir.iterdir()) if e.name != ".outside"]
        return inside + [(str(staged), str(target)) for staged, target in self.outside]


@contextmanager
def publication(home: Path, run_id: str) -> Iterator[Stage]:
    """Yield a Stage; write outputs into ``stage.dir`` (published under ``home`` with the same names) and
    ``stage.folder_for(path)``. On success everything is published together; on an exception nothing is."""
    home.mkdir(parents=True, exist_ok=True)
    recover(home)
    stage = Stage(home, run_id)
    stage.dir.mkdir()
    try:
        yield stage
        atomic.write_json(home / JOURNAL, {"run_id": run_id, "moves": stage.moves()})
        recover(home)
    finally:
        shutil.rmtree(stage.dir, ignore_errors=True)


def recover(home: Path) -> None:
    """Finish a publication a crash interrupted (journal present), then sweep what killed runs left behind."""
    journal = home / JOURNAL
    if journal.is_file():
        try:
            moves = json.loads(journal.read_text())["moves"]
        except (ValueError, KeyError, TypeError):
            moves = []  # a journal is written in one rename, so this is not ours to interpret: drop it
        for staged, final in moves:
            _move(Path(staged), Path(final))
        journal.unlink()
        for staged, _ in moves:  # the finished run's staging folder
            for folder in Path(staged).parents:
                if folder.parent == home and folder.name.startswith(STAGING_PREFIX):
                    shutil.rmtree(folder, ignore_errors=True)
    sweep(home)


def sweep(folder: Path) -> None:
    """Remove what killed runs left in ``folder``: staging folders, ``.old-`` folders and temp files of writers
    that are no longer running (temp files without a pid in their name: once older than STALE_TEMP_SECONDS)."""
    for entry in folder.iterdir() if folder.is_dir() else []:
        if entry.name.startswith(STAGING_PREFIX) and not _alive(entry.name.rsplit("-", 1)[-1]):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(".") and (
            (".old-" in entry.name and not _alive(entry.name.rsplit("-", 1)[-1])) or _dead_temp(entry)
        ):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _dead_temp(entry: Path) -> bool:
    if not entry.name.endswith(".tmp"):
        return False
    writer = TEMP_PID.search(entry.name)
    if writer:
        return not _alive(writer[1])
    return time.time() - entry.lstat().st_mtime > STALE_TEMP_SECONDS


def _move(staged: Path, final: Path) -> None:
    if not staged.exists():  # already moved before the crash
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    if staged.is_dir() and final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)


def _alive(pid: str) -> bool:
    """Whether ``pid`` (as embedded in a leftover's name) is a running process; unknown counts as dead."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from essayio import atomic, outputs
from essayio.errors import UserError

JOURNAL = ".publish-journal.json"
STAGING_PREFIX = outputs.STAGING_PREFIX
STALE_TEMP_SECONDS = 600  # temp files of atomic writes older than this belong to a dead run
TEMP_PID = re.compile(r"\.pid(\d+)\.")  # atomic.temp_prefix: the writer's pid in a temp file's name


class Stage:
    """Where one run writes its outputs before they are published together. Each output is staged on its
    target's own file system (beside it), so every publication move is a same-file-system rename."""

    def __init__(self, home: Path, run_id: str, flag: str, inputs: Sequence[str | Path | None]) -> None:
        self.home, self.run_id, self.flag, self.inputs = home, run_id, flag, inputs
        self.name = f"{STAGING_PREFIX}{run_id}-{os.getpid()}"
        self.dir = _staging_dir(home / self.name, home)
        self.outside: list[tuple[Path, Path]] = []

    def folder_for(self, target: Path, flag: str) -> Path:
        """A staged folder for an output that lives outside ``home`` (e.g. ``ensemble/``), moved with the rest.
        The folder is checked against the output policy, and staged beside it (on its file system) at once, so
        a target that cannot be written is said before anything is published."""
        target = outputs.absolute(target)
        outputs.check_replaceable(target, flag, self.inputs)
        sweep(target.parent)
        k = len(self.outside)
        staged = _staging_dir(target.parent / f"{STAGING_PREFIX}{self.run_id}-o{k}-{os.getpid()}", target) / "new"
        self.outside.append((staged, target))
        return staged

    def moves(self) -> list[tuple[str, str]]:
        inside = [(str(e), str(self.home / e.name)) for e in sorted(self.dir.iterdir())]
        return inside + [(str(staged), str(target)) for staged, target in self.outside]

    def staging_dirs(self) -> list[Path]:
        return [self.dir, *(staged.parent for staged, _ in self.outside)]


def _staging_dir(path: Path, target: Path) -> Path:
    """Create a staging folder; a place that cannot be written is one line naming the target."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(exist_ok=True)
    except OSError as err:
        raise UserError(f"{target}: cannot write there ({err.strerror}); point it to a writable folder") from None
    return path


@contextmanager
def publication(
    home: Path,
    run_id: str,
    flag: str = "--out",
    inputs: Sequence[str | Path | None] = (),
    named: Sequence[str] = (),
) -> Iterator[Stage]:
    """Yield a Stage; write outputs into ``stage.dir`` (published under ``home`` with the same names) and
    ``stage.folder_for(path)``. On success everything is published together; on an exception nothing is.
    A file under ``home`` may replace only a file this project wrote there (essayio.outputs), or one of
    ``named``, the files the user named."""
    home = outputs.absolute(home)
    home.mkdir(parents=True, exist_ok=True)
    recover(home)
    stage = Stage(home, run_id, flag, inputs)
    try:
        yield stage
        names = [e.name for e in stage.dir.iterdir()]
        for staged, _ in stage.outside:
            if staged.is_dir():
                outputs.mark_all(staged)
        outputs.claim(home, [n for n in names if n not in named], flag)
        outputs.record(home, names)  # safe before the moves: each name is absent or this project's already
        atomic.write_json(home / JOURNAL, {"run_id": run_id, "moves": stage.moves()})
        recover(home, roll_back=True)
    finally:
        for folder in stage.staging_dirs():
            shutil.rmtree(folder, ignore_errors=True)


def recover(home: Path, roll_back: bool = False) -> None:
    """Make the publication a journal names (a crash interrupted it: roll forward), then sweep what killed runs
    left behind. With ``roll_back`` (a live run), a move that fails undoes the ones made, so the old outputs
    stay, and is one line."""
    journal = home / JOURNAL
    if journal.is_file():
        try:
            moves = [(Path(s), Path(f)) for s, f in json.loads(journal.read_text())["moves"]]
        except (ValueError, KeyError, TypeError):
            moves = []  # a journal is written in one rename, so this is not ours to interpret: drop it
        try:
            _move_all(moves, roll_back)
        except UserError:  # rolled back: the journal names moves that must not be made
            journal.unlink()
            raise
        journal.unlink()  # (a run killed before here leaves it: the next start rolls forward)
        for staged, _ in moves:  # the finished run's staging folders
            for folder in staged.parents:
                if folder.name.startswith(STAGING_PREFIX):
                    shutil.rmtree(folder, ignore_errors=True)
    sweep(home)


def _move_all(moves: list[tuple[Path, Path]], roll_back: bool) -> None:
    done: list[tuple[Path, Path, Path | None]] = []
    try:
        for staged, final in moves:
            if staged.exists():  # else moved already, before a crash
                done.append((staged, final, _move(staged, final)))
    except OSError as err:
        if not roll_back:
            raise
        for staged, final, old in reversed(done):
            os.replace(final, staged)
            if old is not None:
                os.replace(old, final)
        where = err.filename or moves[len(done)][1]
        raise UserError(f"{where}: cannot publish there ({err.strerror}); nothing was replaced") from None
    for _, _, old in done:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


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


def _move(staged: Path, final: Path) -> Path | None:
    """Rename ``staged`` to ``final``; an old ``final`` is first renamed aside (returned, to drop or restore)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        os.replace(final, old)
    try:
        os.replace(staged, final)
    except OSError:
        if old is not None:
            os.replace(old, final)
        raise
    return old


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

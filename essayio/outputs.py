"""The output policy, in one place: a command writes only the paths the user named and the side outputs its docs
list for them, and replaces a folder only when this project wrote everything in it.

Every folder the project writes into records, in a marker file, the names it wrote there. A side output (a report
beside a submission) may replace only a file the marker names; a folder is replaced only when it is new, empty,
or holds nothing the marker does not name. The project's own tree, a folder holding an input, and any folder
above either are never replaced.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from essayio import atomic
from essayio.errors import UserError

MARKER = ".daigt-output"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
STAGING_PREFIX = ".staging-"  # a publication's staging folder (essayio.publish)
LEFTOVER_MARKS = (".pid", ".old-", STAGING_PREFIX)  # what killed runs leave; publish.sweep removes them


def absolute(path: str | Path) -> Path:
    """The path made absolute without following links (``.`` and ``..`` resolved), so ``.`` has a name."""
    return Path(os.path.abspath(path))


def output_file(default_name: str) -> Callable[[str], Path]:
    """An argparse type for a file output: a trailing slash, or an existing folder, means that folder, and the
    file is ``default_name`` inside it."""

    def parse(value: str) -> Path:
        if value.endswith(("/", os.sep)) or Path(value).is_dir():
            return Path(value) / default_name
        return Path(value)

    return parse


def written_here(folder: Path) -> set[str]:
    """The names this project wrote in ``folder`` (none without a marker, or with one it cannot read)."""
    try:
        names = json.loads((folder / MARKER).read_text(encoding="utf-8"))["written"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {str(n) for n in names} if isinstance(names, list) else set()


def record(folder: Path, names: Iterable[str]) -> None:
    """Add ``names`` to what the marker says this project wrote in ``folder``."""
    atomic.write_json(folder / MARKER, {"written": sorted(written_here(folder) | set(names))})


def claim(folder: Path, names: Iterable[str], flag: str) -> None:
    """Refuse when a side output would replace a file in ``folder`` that this project did not write."""
    ours = written_here(folder)
    for name in names:
        path = folder / name
        if (path.exists() or path.is_symlink()) and name not in ours:
            raise UserError(
                f"{flag}: {path} exists and this project did not write it; it would be replaced: "
                "move it, or choose another folder"
            )


def _leftover(name: str) -> bool:
    return name.startswith(".") and any(mark in name for mark in LEFTOVER_MARKS)


def check_replaceable(folder: Path, flag: str, inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse to replace ``folder`` if it is the project's tree, holds an input, or holds anything this project
    did not write."""
    target = absolute(folder).resolve()
    if target == PROJECT_ROOT or target in PROJECT_ROOT.parents:
        raise UserError(f"{flag} {folder} is the project's own folder (or holds it); choose a new folder")
    for given in inputs:
        if given is None or str(given) == "-":
            continue
        source = absolute(given).resolve()
        if target == source or target in source.parents:
            raise UserError(f"{flag} {folder} holds the input {given}; choose a new folder")
    if not (folder.exists() or folder.is_symlink()):
        return
    if not folder.is_dir():
        raise UserError(f"{flag} {folder} is a file, not a folder; choose a new folder")
    ours = written_here(folder)
    foreign = sorted(e for e in os.listdir(folder) if e != MARKER and e not in ours and not _leftover(e))
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise UserError(
            f"{flag} {folder} holds {foreign[0]}{more}, which this project did not write; replacing the folder "
            "would delete it: choose a new or empty folder"
        )


def mark_all(folder: Path) -> None:
    """Record every entry of a folder the project has just built as its own."""
    record(folder, (e for e in os.listdir(folder) if e != MARKER))


@contextmanager
def replaced_folder(folder: str | Path, flag: str, inputs: Iterable[str | Path | None] = ()) -> Iterator[Path]:
    """Yield a temp folder that replaces ``folder`` in one rename on success (essayio.atomic.atomic_dir), after
    the policy's checks; the new folder records its entries as the project's."""
    folder = absolute(folder)
    check_replaceable(folder, flag, inputs)
    with atomic.atomic_dir(folder) as tmp:
        yield tmp
        mark_all(tmp)

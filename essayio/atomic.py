"""Atomic writes: a reader sees the old artifact or the new one, never half of either."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from essayio.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


def temp_prefix(path: Path) -> str:
    """Temp names carry the writer's pid, so a later run can tell a dead run's leftovers from live work."""
    return f".{path.name}.pid{os.getpid()}."


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    with _named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; artifacts should read like any other file
    try:
        with _named(path):
            yield tmp_path
            os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def _named(path: Path) -> Iterator[None]:
    """An I/O error while writing ``path`` names ``path``: not the hidden temp file, nor no file at all (a full
    disk raises from write() without a name)."""
    try:
        yield
    except OSError as err:
        if err.filename is None or Path(str(err.filename)).name.startswith(f".{path.name}.pid"):
            err.filename = str(path)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder beside ``path``; on success it becomes ``path`` (old one removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_UMASK)
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_yaml(path: str | Path, obj: Any) -> None:
    write_text(path, yaml.safe_dump(obj, sort_keys=False))


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def refuse_input_as_output(output: str | Path | None, inputs: list[str | Path | None], flag: str) -> None:
    """Refuse an output path that is one of the inputs (also by another spelling, a link or a hard link):
    writing it would replace the user's data with the results."""
    if output is None or str(output) == "-":
        return
    out = Path(output)
    for given in inputs:
        if given is None or str(given) == "-":
            continue
        source = Path(given)
        same = out.exists() and source.exists() and os.path.samefile(out, source)
        if same or out.resolve() == source.resolve():
            raise UserError(f"{flag} {output} is the input {given}: it would be replaced; write to another file")

"""Atomic writes: a failure keeps the previous artifact whole and leaves no temp files behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from essayio import atomic


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(ZeroDivisionError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        1 / 0  # noqa: B018
    assert target.read_text().strip().endswith("}") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "fold0"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("new")
        raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    with atomic.atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["c.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["fold0"]

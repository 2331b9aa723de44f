"""Atomic writes: a failure keeps the previous artifact whole and leaves no temp files behind."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from essayio import atomic
from essayio.errors import os_error_line


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


def _publish(home: Path, outside: Path, version: str, fail: bool = False) -> None:
    from essayio.publish import publication

    with publication(home, version) as stage:
        atomic.write_text(stage.dir / "submission.csv", version)
        atomic.write_text(stage.dir / "report.json", version)
        folder = stage.folder_for(outside, "--ensemble")
        folder.mkdir(parents=True)
        (folder / "ensemble.json").write_text(version)
        if fail:
            raise OSError(28, "No space left on device", str(stage.dir / "roc.png"))


def _published(home: Path, outside: Path) -> set[str]:
    return {
        (home / "submission.csv").read_text(),
        (home / "report.json").read_text(),
        (outside / "ensemble.json").read_text(),
    }


def test_a_publication_is_all_from_one_run_or_nothing(tmp_path: Path) -> None:
    home, outside = tmp_path / "submissions", tmp_path / "ensemble"
    _publish(home, outside, "run1")
    assert _published(home, outside) == {"run1"}
    with pytest.raises(OSError):
        _publish(home, outside, "run2", fail=True)  # stopped while writing: nothing of run2 is published
    assert _published(home, outside) == {"run1"}
    assert sorted(p.name for p in home.iterdir()) == [".daigt-output", "report.json", "submission.csv"]


def test_a_run_killed_between_moves_is_completed_by_the_next_start(tmp_path: Path, monkeypatch) -> None:
    import essayio.publish as publish

    home, outside = tmp_path / "submissions", tmp_path / "ensemble"
    _publish(home, outside, "run1")
    real_move, calls = publish._move, []

    def killed_after_one(staged: Path, final: Path) -> None:
        calls.append(final)
        if len(calls) > 1:
            raise KeyboardInterrupt  # the process dies here: one output moved, the others not
        real_move(staged, final)

    monkeypatch.setattr(publish, "_move", killed_after_one)
    monkeypatch.setattr(publish.shutil, "rmtree", lambda *a, **k: None)  # a killed run cleans nothing up
    with pytest.raises(KeyboardInterrupt):
        _publish(home, outside, "run2")
    assert len(_published(home, outside)) == 2  # mixed, as a kill -9 would leave it
    monkeypatch.undo()
    publish.recover(home)  # what the next blend (or any publication) does first
    assert _published(home, outside) == {"run2"}
    assert not (home / publish.JOURNAL).exists()  # (an old copy stays until its writer's pid is dead: this one)
    assert sorted(p.name for p in home.iterdir() if ".old-" not in p.name) == [
        ".daigt-output",
        "report.json",
        "submission.csv",
    ]


def test_leftovers_of_dead_runs_are_swept(tmp_path: Path) -> None:
    from essayio.publish import recover

    (tmp_path / ".staging-20260101-000000-999999999").mkdir()
    (tmp_path / ".ensemble.old-999999999").mkdir()
    (tmp_path / "keep.csv").write_text("x")
    recover(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.csv"]


def test_an_io_error_while_writing_names_the_output_not_its_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    with pytest.raises(OSError) as full, atomic.atomic_path(target), open("/dev/full", "w") as disk:
        disk.write("x" * 100_000)  # a full disk: write() raises ENOSPC and names no file
        disk.flush()
    assert full.value.errno == errno.ENOSPC and full.value.filename == str(target)
    with pytest.raises(OSError) as refused, atomic.atomic_path(target) as tmp:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp))
    assert refused.value.filename == str(target)
    assert os_error_line(refused.value).startswith(f"{target}: Permission denied")
    assert list(tmp_path.iterdir()) == []

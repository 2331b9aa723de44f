"""The output policy (essayio.outputs) and all-or-nothing publication (essayio.publish): a command writes only
what the user named and the side outputs its docs list, replaces only folders the project wrote, and publishes
to any file system or to none. Unit tests first, then the real entry points in subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_essays, make_workspace
from helpers import blend_args, blended

from daigt.config import REPO_ROOT
from essayio import atomic, outputs, publish
from essayio.errors import UserError

SECOND_FS = Path("/dev/shm")
UNWRITABLE = Path("/sys/daigt-output-test")  # sysfs: no one, root included, may create a folder there


def digest(folder: Path) -> dict[str, str]:
    """md5 of every file under ``folder``: what a run must leave as it was."""
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture
def other_fs() -> Iterator[Path]:
    """A folder on a second file system (a tmpfs), removed afterwards."""
    assert os.stat(SECOND_FS).st_dev != os.stat(REPO_ROOT).st_dev, "/dev/shm is not a second file system here"
    folder = SECOND_FS / f"daigt-test-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=True)


def test_a_folder_is_replaced_only_when_the_project_wrote_everything_in_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,text\n")
    for folder, inputs, said in (
        (REPO_ROOT, [], "project's own folder"),
        (REPO_ROOT.parent, [], "project's own folder"),
        (data, [data / "train.csv"], "holds the input"),
        (tmp_path, [data / "train.csv"], "holds the input"),
        (data, [], "holds train.csv, which this project did not write"),
        (data / "train.csv", [], "is a file"),
    ):
        with pytest.raises(UserError, match=said):
            outputs.check_replaceable(folder, "--out", inputs)
    with outputs.replaced_folder(tmp_path / "pkg", "--out") as new:
        (new / "a.txt").write_text("1")
    assert outputs.written_here(tmp_path / "pkg") == {"a.txt"}
    outputs.check_replaceable(tmp_path / "pkg", "--out")  # ours: may be replaced
    (tmp_path / "pkg" / "notes.txt").write_text("the user's")
    with pytest.raises(UserError, match=r"holds notes\.txt"):
        outputs.check_replaceable(tmp_path / "pkg", "--out")
    (tmp_path / "empty").mkdir()
    outputs.check_replaceable(tmp_path / "empty", "--out")


def test_a_side_output_replaces_only_a_file_the_project_wrote(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("the user's report")
    with pytest.raises(UserError, match=r"report\.md exists and this project did not write it"):
        outputs.claim(tmp_path, ["report.md", "roc.png"], "--out")
    outputs.claim(tmp_path, ["roc.png"], "--out")
    outputs.record(tmp_path, ["roc.png"])
    (tmp_path / "roc.png").write_text("ours")
    outputs.claim(tmp_path, ["roc.png"], "--out")


def test_a_trailing_slash_or_a_folder_means_a_folder(tmp_path: Path) -> None:
    parse = outputs.output_file("submission.csv")
    assert parse(f"{tmp_path}/new/") == tmp_path / "new" / "submission.csv"
    assert parse(str(tmp_path)) == tmp_path / "submission.csv"
    assert parse(str(tmp_path / "mine.csv")) == tmp_path / "mine.csv"


def _publish(home: Path, target: Path, run_id: str) -> None:
    with publish.publication(home, run_id) as stage:
        atomic.write_text(stage.dir / "submission.csv", run_id)
        with atomic.atomic_dir(stage.folder_for(target, "--ensemble")) as folder:
            (folder / "run.txt").write_text(run_id)


def test_publication_to_a_second_file_system_is_whole(tmp_path: Path, other_fs: Path) -> None:
    target = other_fs / "ensemble"
    for run_id in ("one", "two"):
        _publish(tmp_path / "sub", target, run_id)
        assert (tmp_path / "sub" / "submission.csv").read_text() == run_id == (target / "run.txt").read_text()
    assert sorted(p.name for p in other_fs.iterdir()) == ["ensemble"]  # no staging or old folder left
    assert not (tmp_path / "sub" / publish.JOURNAL).exists()


def test_a_target_that_cannot_be_written_leaves_the_old_state(tmp_path: Path) -> None:
    home, target = tmp_path / "sub", tmp_path / "ensemble"
    _publish(home, target, "one")
    before = digest(tmp_path)
    with pytest.raises(UserError, match="cannot write there"):
        _publish(home, UNWRITABLE / "ensemble", "two")
    assert digest(tmp_path) == before


def test_a_move_that_fails_midway_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, target = tmp_path / "sub", tmp_path / "ensemble"
    _publish(home, target, "one")
    before = digest(tmp_path)
    real = os.replace

    def refuse_the_ensemble(src: str, dst: str) -> None:
        if Path(dst) == target and "staging" in str(src):
            raise PermissionError(1, "Operation not permitted", str(dst))
        real(src, dst)

    monkeypatch.setattr(publish.os, "replace", refuse_the_ensemble)
    with pytest.raises(UserError, match="nothing was replaced"):
        _publish(home, target, "two")
    assert digest(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*") if p.name != outputs.MARKER]  # no journal, staging or old copy


# --- the real entry points ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return blended(make_workspace(tmp_path_factory.mktemp("policy"), make_essays(120)), "rank_mean")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def one_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line (a warning said earlier in the run may precede it)."""
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def blend_to(ws: dict[str, Path], out: str, ensemble: Path | None = None) -> subprocess.CompletedProcess:
    args = blend_args(ws, Path(out))
    i = args.index("--ensemble")
    args[i + 1 : i + 2] = [str(ensemble)] if ensemble else []
    if ensemble is None:
        del args[i]
    args[args.index("--out") + 1] = out  # as typed: Path() would drop a trailing slash
    return run("src/blend.py", *args)


def test_package_never_replaces_the_project_its_inputs_or_a_users_folder(ws: dict[str, Path]) -> None:
    tree = digest(ws["root"])
    configs = digest(REPO_ROOT / "configs")
    for out, said in (
        (str(ws["root"]), "holds the input"),
        ("configs", "inside configs/"),
        (str(REPO_ROOT / "docs"), "which this project did not write"),
        (str(REPO_ROOT.parent), "project's own folder"),
        (".", "project's own folder"),
        ("src/kpkg", "inside src/"),
    ):
        line = one_line(run("src/package.py", "--out", out, "--ensemble", str(ws["ensemble"]), "--no-progress"))
        assert said in line, line
    assert digest(ws["root"]) == tree and digest(REPO_ROOT / "configs") == configs
    assert not (REPO_ROOT / "src" / "kpkg").exists()


def test_blend_side_outputs_never_replace_a_users_files(ws: dict[str, Path], tmp_path: Path) -> None:
    mydocs = tmp_path / "mydocs"
    (mydocs / "ensemble").mkdir(parents=True)
    (mydocs / "report.md").write_text("my own report")
    (mydocs / "ensemble" / "notes.txt").write_text("my notes")
    before = digest(mydocs)
    assert "holds notes.txt" in one_line(blend_to(ws, str(mydocs / "my_submission.csv")))
    (mydocs / "ensemble" / "notes.txt").unlink()
    assert "report.md exists and this project did not write it" in one_line(
        blend_to(ws, str(mydocs / "my_submission.csv"))
    )
    assert digest(mydocs) == {k: v for k, v in before.items() if k != "ensemble/notes.txt"}
    assert not (mydocs / "my_submission.csv").exists()


def test_blend_to_a_folder_with_a_trailing_slash_and_to_another_file_system(
    ws: dict[str, Path], tmp_path: Path, other_fs: Path
) -> None:
    done = blend_to(ws, f"{tmp_path / 'exp'}/", other_fs / "ens")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "exp" / "report.json").read_text())
    assert (tmp_path / "exp" / "submission.csv").is_file()
    assert json.loads((other_fs / "ens" / "ensemble.json").read_text())["run_id"] == report["run_id"]
    assert sorted(p.name for p in other_fs.iterdir()) == ["ens"]
    before = digest(tmp_path / "exp")
    assert "cannot write there" in one_line(blend_to(ws, f"{tmp_path / 'exp'}/", UNWRITABLE / "ens"))
    assert digest(tmp_path / "exp") == before  # the submission and report of the first run, untouched


def test_predict_reports_never_replace_the_input_or_a_users_file(ws: dict[str, Path], tmp_path: Path) -> None:
    essays = tmp_path / "essays.json"
    frame = pd.read_csv(ws["test"]).assign(writer=lambda f: ["a", "b", "c"] * (len(f) // 3))
    essays.write_text(frame.to_json(orient="records", lines=True))
    (tmp_path / "x.json").write_text("the user's")
    before = digest(tmp_path)
    base = ["src/predict.py", "--ensemble", str(ws["ensemble"]), "--no-progress", "--format", "jsonl"]
    base += ["--input", str(essays), "--by", "writer"]
    assert "is the input" in one_line(run(*base, "--by-report", str(tmp_path / "essays.md")))
    assert "x.json exists and this project did not write it" in one_line(
        run(*base, "--by-report", str(tmp_path / "x.md"))
    )
    assert digest(tmp_path) == before
    done = run(*base, "--by-report", str(tmp_path / "y.md"), "--output", f"{tmp_path / 'out'}/")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "predictions.csv").is_file() and (tmp_path / "y.png").is_file()
    again = run(*base, "--by-report", str(tmp_path / "y.md"))  # its own report: replaced
    assert again.returncode == 0, again.stderr

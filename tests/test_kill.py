"""kill -9 of the real entry points at their most delicate moment: nothing half-written is ever visible, the
next run sweeps the leftovers and finishes the job.

A driver runs the entry point's ``main`` in a child process with ``os.replace`` wrapped: at the chosen rename it
drops a marker file and stalls, and the test kills the child with SIGKILL right there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import blend_args, train_args

import blend
import train_fold
from daigt.artifacts import ModelArtifacts
from daigt.config import BLEND_CONFIG, REPO_ROOT, load_yaml
from essayio.publish import JOURNAL, recover

pytestmark = pytest.mark.integration

DRIVER = """
import importlib, json, os, sys, time
entry, args, target, nth, marker = json.loads(sys.argv[1])
real, seen = os.replace, [0]
def stalling(src, dst, *rest, **kw):
    if str(dst).endswith(target):
        seen[0] += 1
        if seen[0] == nth:
            open(marker, "w").close()
            time.sleep(600)
    return real(src, dst, *rest, **kw)
os.replace = stalling
importlib.import_module(entry).main(args)
"""


def kill_at(entry: str, args: list[str], target: str, tmp_path: Path, nth: int = 1) -> None:
    """Run ``entry``.main(args) in a child; SIGKILL it when it is about to rename onto a path ending in ``target``."""
    marker = tmp_path / f"stalled-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])}
    payload = json.dumps([entry, args, target, nth, str(marker)])
    child = subprocess.Popen([sys.executable, "-c", DRIVER, payload], env=env, cwd=REPO_ROOT)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, f"{entry} ended (exit {child.returncode}) before reaching {target}"
        assert time.monotonic() < deadline, f"{entry} never reached {target}"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".staging-" in p.name or ".old-" in p.name]


def test_train_fold_killed_at_a_folds_rename_leaves_no_half_fold_and_the_rerun_completes(
    workspace: dict[str, Path], capsys
) -> None:
    model_dir = workspace["artifacts"] / "tiny_tfidf"
    kill_at("train_fold", train_args(workspace), "tiny_tfidf/fold1", workspace["root"])
    folds = ModelArtifacts(workspace["artifacts"], "tiny_tfidf")
    assert folds.fold(0).verified()["fold"] == 0  # finished before the kill: complete and intact
    assert not (model_dir / "fold1").exists()  # fully written in its temp folder, never renamed in
    assert leftovers(model_dir), "the kill should have left fold1's temp folder behind"
    capsys.readouterr()
    train_fold.main(train_args(workspace))
    out = capsys.readouterr().out
    assert "fold 0: up to date" in out and "fold 1: AUC" in out and "fold 2: AUC" in out
    assert all(folds.fold(k).verified() for k in range(3)) and not leftovers(model_dir)


def test_blend_killed_between_its_publications_moves_is_rolled_forward_by_the_next_start(
    workspace: dict[str, Path], tmp_path: Path
) -> None:
    train_fold.main(train_args(workspace))
    out = workspace["root"] / "sub" / "submission.csv"
    blend.main(blend_args(workspace, out))
    first = json.loads((out.parent / "report.json").read_text())["run_id"]
    cfg = load_yaml(BLEND_CONFIG)
    cfg["stacker"]["num_leaves"] = 7
    other = tmp_path / "blend.yaml"
    other.write_text(yaml.safe_dump(cfg))
    ensemble = workspace["root"] / "ensemble"
    # killed at the move of submission.csv: report.* are already the new run's, submission and ensemble/ are not
    kill_at("blend", [*blend_args(workspace, out), "--blend-config", str(other)], str(out), tmp_path)
    assert (out.parent / JOURNAL).is_file()
    second = json.loads((out.parent / "report.json").read_text())["run_id"]
    assert second != first and json.loads((ensemble / "ensemble.json").read_text())["run_id"] == first
    recover(out.parent)  # what the next blend does first: roll the interrupted publication forward
    assert json.loads((ensemble / "ensemble.json").read_text())["run_id"] == second
    assert not (out.parent / JOURNAL).exists() and not leftovers(out.parent)
    blend.main(blend_args(workspace, out))
    third = json.loads((out.parent / "report.json").read_text())["run_id"]
    assert json.loads((ensemble / "ensemble.json").read_text())["run_id"] == third
    assert pd.read_csv(out)["id"].astype(str).tolist() == pd.read_csv(workspace["test"])["id"].astype(str).tolist()
    assert not leftovers(out.parent) and not leftovers(workspace["root"])

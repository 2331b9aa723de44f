"""--jobs workers: results come back, workers die with a parent killed by kill -9, and a memory budget
holds back a model whose estimate does not fit beside the running ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import psutil
import pytest
from helpers import timed_nap

from daigt.artifacts import ModelArtifacts
from daigt.errors import DaigtError
from daigt.parallel import map_models, parse_memory

ROOT = Path(__file__).resolve().parents[1]


def test_map_models_returns_every_result_in_worker_processes() -> None:
    assert sorted(map_models(partial(str.upper), ["a", "b", "c"], jobs=2)) == ["A", "B", "C"]


def overlapping(spans: list[tuple[str, float, float]]) -> set[frozenset[str]]:
    """The pairs of jobs that ran at the same time."""
    return {frozenset((a, b)) for a, s1, e1 in spans for b, s2, e2 in spans if a < b and s1 < e2 and s2 < e1}


def test_without_a_budget_two_jobs_run_side_by_side() -> None:
    spans = list(map_models(timed_nap, ["a", "b"], jobs=2))
    assert overlapping(spans) == {frozenset("ab")}


def test_a_budget_holds_back_the_model_that_does_not_fit_and_runs_the_one_that_does() -> None:
    estimates = {"a": 600.0, "b": 600.0, "c": 300.0}
    spans = list(map_models(timed_nap, ["a", "b", "c"], jobs=2, budget_mb=1000, estimates_mb=estimates))
    assert sorted(name for name, *_ in spans) == ["a", "b", "c"]
    pairs = overlapping(spans)
    assert frozenset("ab") not in pairs  # 1,200 MiB together: never side by side
    assert frozenset("ac") in pairs  # 900 MiB: c is started beside a, ahead of b


def test_a_model_without_an_estimate_runs_alone() -> None:
    spans = list(map_models(timed_nap, ["a", "u"], jobs=2, budget_mb=1000, estimates_mb={"a": 10.0, "u": None}))
    assert overlapping(spans) == set()


def test_memory_sizes_parse_to_mib_and_mistakes_are_one_line() -> None:
    assert parse_memory("12G") == 12 * 1024 and parse_memory("8000M") == 8000 and parse_memory("1.5GiB") == 1536
    assert parse_memory("auto", available=lambda: 10_000.0) == pytest.approx(9_000.0)
    for bad in ("lots", "-3G", "0"):
        with pytest.raises(DaigtError, match="--max-memory"):
            parse_memory(bad)
    with pytest.raises(DaigtError, match="free memory is unknown"):
        parse_memory("auto", available=lambda: None)


def test_peak_memory_per_essay_comes_from_the_recorded_folds(tmp_path: Path) -> None:
    artifacts = ModelArtifacts(tmp_path, "m")
    assert artifacts.peak_memory_per_essay() is None  # never trained: unknown
    figures = {"n_train": 600, "n_valid": 200, "n_holdout": 150, "n_test": 50}
    for fold, peak in ((0, 1000.0), (1, 1500.0)):
        artifacts.fold(fold).path.mkdir(parents=True)
        (artifacts.fold(fold).path / "metrics.json").write_text(json.dumps({**figures, "peak_rss_mb": peak}))
    (artifacts.path / "fold2").mkdir()
    (artifacts.path / "fold2" / "metrics.json").write_text("{not json")  # ignored, not fatal
    assert artifacts.peak_memory_per_essay() == pytest.approx(1.5)  # the largest: 1,500 MiB / 1,000 essays


def test_workers_exit_when_their_parent_is_killed() -> None:
    script = (
        f"import sys; sys.path[:0] = [{str(ROOT / 'src')!r}, {str(ROOT / 'tests')!r}]\n"
        "from daigt.parallel import map_models\nfrom helpers import sleep_long\n"
        "list(map_models(sleep_long, ['a', 'b'], jobs=2))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = [p for p in psutil.Process(parent.pid).children() if "spawn" in " ".join(p.cmdline())]
            if len(workers) == 2:
                break
            time.sleep(0.2)
        assert len(workers) == 2, "the two workers never started"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, f"workers {[p.pid for p in alive]} outlived their killed parent"
    finally:  # only what this test started: pytest's own helpers (multiprocessing's resource tracker) live on
        for p in [*workers, psutil.Process(parent.pid)] if parent.poll() is None else workers:
            if p.is_running():
                p.kill()

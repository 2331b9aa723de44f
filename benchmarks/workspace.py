"""What the benchmarks share: a private project config (configs/project.yaml with its folds, holdout and
artifacts under a work folder, so a benchmark never touches the repository's own outputs), and a step's wall
time and peak memory measured as a user's process would see them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from daigt.config import PROJECT_CONFIG

ROOT = Path(__file__).resolve().parents[1]  # the repository


def isolated_project(home: Path) -> Path:
    """Write ``home/project.yaml`` (outputs under ``home``) and return its path."""
    config = yaml.safe_load(PROJECT_CONFIG.read_text())
    config["folds"]["path"] = str(home / "folds" / "folds.csv")
    config["holdout"]["path"] = str(home / "folds" / "holdout.csv")
    config["artifacts"] = str(home / "artifacts")
    home.mkdir(parents=True, exist_ok=True)
    path = home / "project.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# A small Python process runs the step and reports its children's peak RSS. Read directly from the benchmark's
# own child, the peak would start at the benchmark's size: Linux carries a process's high-water mark across
# exec, and subprocess starts children with vfork, so every step read the same ~1.5 GB.
MEASURE = (
    "import json, resource, subprocess, sys; done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
    "print(json.dumps({'rc': done.returncode, "
    "'peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
)


def measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the peak resident MiB of the largest process ``command`` started (itself included)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], cwd=ROOT, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {"rc": done.returncode}
    if result["rc"] != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return seconds, result["peak_mib"]

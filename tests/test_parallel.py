"""--jobs workers: results come back, and workers die with a parent killed by kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import psutil

from daigt.parallel import map_models

ROOT = Path(__file__).resolve().parents[1]


def test_map_models_returns_every_result_in_worker_processes() -> None:
    assert sorted(map_models(partial(str.upper), ["a", "b", "c"], jobs=2)) == ["A", "B", "C"]


def test_workers_exit_when_their_parent_is_killed() -> None:
    script = (
        f"import sys; sys.path[:0] = [{str(ROOT / 'src')!r}, {str(ROOT / 'tests')!r}]\n"
        "from daigt.parallel import map_models\nfrom helpers import sleep_long\n"
        "list(map_models(sleep_long, ['a', 'b'], jobs=2))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
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
    finally:
        for p in psutil.Process().children(recursive=True):
            p.kill()

"""Entry points run under the project's virtual environment. Started by another Python (``python src/...`` with
the venv not activated), they re-run themselves under ``.venv/bin/python``, or, without one, stop with one line
saying how to set it up: never a ModuleNotFoundError traceback.

Imported first by every entry point (standard library only, before any third-party import)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

VENV_PYTHON = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
NEEDED = ("numpy", "pandas", "yaml", "essayio")  # what every entry point imports; absent: not the project's Python
REEXECUTED = "DAIGT_REEXECUTED"  # set on the re-run: a venv that still lacks them is reported, not re-run again
SET_UP = "run `make setup`, then `source .venv/bin/activate` or call `.venv/bin/python src/...`"


def missing() -> list[str]:
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def ensure() -> None:
    absent = missing()
    if not absent:
        return
    if VENV_PYTHON.is_file() and not os.environ.get(REEXECUTED):
        os.environ[REEXECUTED] = "1"
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv])
    print(f"error: {sys.executable} lacks the project's packages ({', '.join(absent)}): {SET_UP}", file=sys.stderr)
    sys.exit(2)


ensure()

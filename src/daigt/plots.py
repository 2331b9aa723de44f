"""Figures go to PNG files, headless; each appears in one rename, and its memory is freed when saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: every figure is written to a file
import matplotlib.pyplot as plt

from essayio import atomic

__all__ = ["plt", "save_figure"]
DPI = 110


def save_figure(fig: Any, path: Path, close: bool = True, **savefig: Any) -> None:
    """Write ``fig`` to ``path`` as PNG atomically; ``close`` frees it (keep it open to save parts of it)."""
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", **{"dpi": DPI, **savefig})
    if close:
        plt.close(fig)

"""Figures go to PNG files, headless; each appears in one rename, and its memory is freed when saved.

matplotlib is imported at the first figure, not with this module: predict and serve import the modules that
draw reports but never draw, and matplotlib is ~0.5 s of their start-up."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from essayio import atomic

__all__ = ["close", "save_figure", "subplots"]
DPI = 110


@cache
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: every figure is written to a file
    import matplotlib.pyplot as plt

    return plt


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``matplotlib.pyplot.subplots``."""
    return _pyplot().subplots(*args, **kwargs)


def close(fig: Any) -> None:
    """Free ``fig`` without saving it."""
    _pyplot().close(fig)


def save_figure(fig: Any, path: Path, close: bool = True, **savefig: Any) -> None:
    """Write ``fig`` to ``path`` as PNG atomically; ``close`` frees it (keep it open to save parts of it)."""
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", **{"dpi": DPI, **savefig})
    if close:
        _pyplot().close(fig)

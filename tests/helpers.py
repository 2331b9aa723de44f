"""Command lines for the entry points, pointed at a test workspace (see the ``workspace`` fixture)."""

from __future__ import annotations

from pathlib import Path


def train_args(ws: dict[str, Path], *extra: str) -> list[str]:
    return [
        "--fold",
        "all",
        "--model",
        str(ws["model"]),
        "--config",
        str(ws["project"]),
        "--artifacts",
        str(ws["artifacts"]),
        "--no-progress",
        *extra,
    ]


def blend_args(ws: dict[str, Path], out: Path) -> list[str]:
    return [
        "--config",
        str(ws["project"]),
        "--artifacts",
        str(ws["artifacts"]),
        "--out",
        str(out),
        "--ensemble",
        str(ws["root"] / "ensemble"),
        "--history",
        str(ws["root"] / "runs" / "history.jsonl"),
        "--no-progress",
    ]


def predict_args(ws: dict[str, Path], source: str, out: Path | None, *extra: str) -> list[str]:
    ensemble = ws.get("ensemble", ws["root"] / "ensemble")
    args = ["--input", source, "--ensemble", str(ensemble), "--no-progress", *extra]
    return [*args, "--output", str(out)] if out else args


def sleep_long(name: str) -> str:
    """A model job that never finishes on its own (for the kill -9 test of --jobs workers)."""
    import time

    time.sleep(300)
    return name

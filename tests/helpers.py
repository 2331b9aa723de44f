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
    ]

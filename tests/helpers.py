"""Command lines for the entry points, pointed at a test workspace (see the ``workspace`` fixture)."""

from __future__ import annotations

from pathlib import Path

import yaml

import blend
import train_fold
from daigt.config import BLEND_CONFIG, load_yaml


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


def timed_nap(name: str) -> tuple[str, float, float]:
    """A model job that takes a second and says when it ran (for the --max-memory scheduling tests)."""
    import time

    started = time.monotonic()
    time.sleep(1.0)
    return name, started, time.monotonic()


def sleep_long(name: str) -> str:
    """A model job that never finishes on its own (for the kill -9 test of --jobs workers)."""
    import time

    time.sleep(300)
    return name


def listed(ws: dict[str, Path], *names: str) -> None:
    """Add ``names`` to the workspace's ``models:`` (blend blends what it lists)."""
    config = yaml.safe_load(ws["project"].read_text())
    ws["project"].write_text(yaml.safe_dump({**config, "models": [*config["models"], *names]}))


def blended(ws: dict[str, Path], pick: str) -> dict[str, Path]:
    """Two tiny TF-IDF models, 3 folds each, blended with ``pick`` (stacker with rank + meta features)."""
    train_fold.main(train_args(ws))
    char = ws["root"] / "tiny_char.yaml"
    char.write_text(ws["model"].read_text().replace("analyzer: word", "analyzer: char_wb"))
    train_fold.main([*train_args(ws)[:2], "--model", str(char), *train_args(ws)[4:]])
    listed(ws, "tiny_char")
    cfg = load_yaml(BLEND_CONFIG)
    cfg["features"]["ranks"] = True
    cfg["pick"] = pick
    blend_cfg = ws["root"] / "blend.yaml"
    blend_cfg.write_text(yaml.safe_dump(cfg))
    out = ws["root"] / "sub" / "submission.csv"
    blend.main([*blend_args(ws, out), "--blend-config", str(blend_cfg)])
    return {**ws, "submission": out, "ensemble": ws["root"] / "ensemble"}

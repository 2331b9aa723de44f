"""The benchmarks' private project config: configs/project.yaml with its folds, holdout and artifacts under a
work folder, so a benchmark never touches the repository's own outputs."""

from __future__ import annotations

from pathlib import Path

import yaml

from daigt.config import PROJECT_CONFIG


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

"""The on-disk formats later steps trust: a model's fold folders, and the saved ensemble. Their one owner.

``artifacts/<model>/fold<k>/`` (written by the fold trainer in one rename):

- ``oof.csv``      id, fold, label, pred: the held-out fold's predictions
- ``test.csv``     id, pred: the test essays' predictions
- ``metrics.json`` AUC, timings, memory, the ``run_key`` (config, seed, data, folds) the fold was trained under
- ``config.yaml``  the resolved model config
- ``model/``       whatever the family's ``save`` wrote; ``load_model`` rebuilds it

``ensemble/`` (written by blend): ``ensemble.json`` (spec), ``oof_references.npz`` (each model's OOF
predictions), ``stacker/fold<k>.txt`` (LightGBM fold boosters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from daigt.config import DeobfuscateSpec
from daigt.errors import DaigtError
from daigt.families import ModelFamily, get_family
from daigt.schema import parse
from essayio import atomic

OOF_FILE, TEST_FILE, METRICS_FILE = "oof.csv", "test.csv", "metrics.json"
CONFIG_FILE, MODEL_DIR = "config.yaml", "model"
ENSEMBLE_FILE, REFERENCES_FILE, STACKER_DIR = "ensemble.json", "oof_references.npz", "stacker"
WORK_PREFIX, ATTACK_DIR = ".work-fold", "attack"


@dataclass(frozen=True)
class FoldFolder:
    """One trained fold of one model."""

    path: Path
    model: str
    fold: int

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    def exists(self) -> bool:
        return (self.path / METRICS_FILE).is_file()

    def metrics(self) -> dict[str, Any]:
        return json.loads((self.path / METRICS_FILE).read_text())

    def run_key(self) -> str | None:
        return self.metrics().get("run_key") if self.exists() else None

    def config(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / CONFIG_FILE).read_text())

    def deobfuscation(self) -> DeobfuscateSpec | None:
        """The normalisation the model's texts went through in training (predict must apply the same)."""
        raw = self.config().get("deobfuscate")
        return None if raw is None else parse(DeobfuscateSpec, raw, str(self.path / CONFIG_FILE), "deobfuscate")

    def oof(self) -> pd.DataFrame:
        return pd.read_csv(self.path / OOF_FILE, dtype={"id": str})

    def test(self) -> pd.DataFrame:
        return pd.read_csv(self.path / TEST_FILE, dtype={"id": str})

    def load_model(self) -> ModelFamily:
        return get_family(self.metrics()["family"]).load(self.model_dir)

    def write(
        self,
        oof: pd.DataFrame,
        test: pd.DataFrame,
        config: dict[str, Any],
        metrics: dict[str, Any],
        save_model: Callable[[Path], None],
    ) -> None:
        """Everything at once: the folder appears in one rename when all of it is written."""
        with atomic.atomic_dir(self.path) as tmp:
            oof.to_csv(tmp / OOF_FILE, index=False)
            test.to_csv(tmp / TEST_FILE, index=False)
            atomic.write_yaml(tmp / CONFIG_FILE, config)
            (tmp / MODEL_DIR).mkdir()
            save_model(tmp / MODEL_DIR)
            atomic.write_json(tmp / METRICS_FILE, metrics)


@dataclass(frozen=True)
class ModelArtifacts:
    """Every fold of one model under the artifacts root."""

    root: Path
    name: str

    @property
    def path(self) -> Path:
        return self.root / self.name

    def fold(self, k: int) -> FoldFolder:
        return FoldFolder(self.path / f"fold{k}", self.name, k)

    def workdir(self, k: int) -> Path:
        """Checkpoints of an unfinished fold (survive a crash; the trainer drops them when the fold is done)."""
        return self.path / f"{WORK_PREFIX}{k}"

    @property
    def attack_dir(self) -> Path:
        return self.path / ATTACK_DIR

    def missing_folds(self, n_folds: int) -> list[int]:
        return [k for k in range(n_folds) if not self.fold(k).exists()]


def model_names(root: Path) -> list[str]:
    """Models with a folder under the artifacts root (hidden folders are work in progress)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass
class SavedEnsemble:
    """What blend froze for predict/serve."""

    spec: dict[str, Any]
    references: dict[str, np.ndarray]
    booster_files: list[Path]


def write_ensemble(
    directory: Path, spec: dict[str, Any], references: dict[str, np.ndarray], boosters: list[Any] | None
) -> None:
    """Write ``directory`` in one atomic rename (a half-saved ensemble never exists)."""
    with atomic.atomic_dir(directory) as tmp:
        atomic.write_json(tmp / ENSEMBLE_FILE, spec)
        np.savez(tmp / REFERENCES_FILE, **references)
        if boosters:
            (tmp / STACKER_DIR).mkdir()
            for k, booster in enumerate(boosters):
                booster.save_model(str(tmp / STACKER_DIR / f"fold{k}.txt"))


def read_ensemble(directory: Path) -> SavedEnsemble:
    spec_path = directory / ENSEMBLE_FILE
    if not spec_path.is_file():
        raise DaigtError(f"{spec_path}: no saved ensemble; run `python src/blend.py` first (it writes one)")
    spec = json.loads(spec_path.read_text())
    with np.load(directory / REFERENCES_FILE) as refs:
        references = {name: refs[name] for name in spec["models"]}
    boosters = sorted((directory / STACKER_DIR).glob("fold*.txt"), key=lambda p: int(p.stem[4:]))
    return SavedEnsemble(spec, references, boosters)

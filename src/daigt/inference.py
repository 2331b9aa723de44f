"""The saved ensemble: what blend picked, frozen so new essays get exactly the blend's scores.

``ensemble/`` holds ``ensemble.json`` (picked candidate, stacker features, thresholds, and the run key of
every fold model it was built from), ``oof_references.npz`` (each model's OOF predictions, the reference
for rank features) and ``stacker/fold<k>.txt`` (LightGBM fold boosters). The fold models themselves stay in
``artifacts/``; loading checks they are still the ones the blend used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml

from daigt import atomic
from daigt.decisions import Thresholds, decide
from daigt.errors import DaigtError
from daigt.families import ModelFamily, get_family
from daigt.hardening import deobfuscate_texts
from daigt.stacking import RANK_MEAN, STACKER, Candidate, ModelPredictions, rank_mean, stack_features, stacker_predict
from daigt.train import CONFIG_FILE, METRICS_FILE, MODEL_DIR, fold_dir

ENSEMBLE_FILE, REFERENCES_FILE, STACKER_DIR = "ensemble.json", "oof_references.npz", "stacker"


def models_needed(picked: str, models: list[str]) -> list[str]:
    return models if picked in (RANK_MEAN, STACKER) else [picked]


def save_ensemble(
    directory: Path,
    artifacts: Path,
    models: dict[str, ModelPredictions],
    picked: Candidate,
    features: dict[str, Any],
    thresholds: Thresholds,
    n_folds: int,
) -> None:
    """Write ``directory`` in one atomic rename (a half-saved ensemble never exists)."""
    needed = models_needed(picked.name, list(models))
    spec_models = {}
    for name in needed:
        fold_metrics = [json.loads((fold_dir(artifacts, name, k) / METRICS_FILE).read_text()) for k in range(n_folds)]
        config = yaml.safe_load((fold_dir(artifacts, name, 0) / CONFIG_FILE).read_text())
        spec_models[name] = {
            "family": fold_metrics[0]["family"],
            "run_keys": [m["run_key"] for m in fold_metrics],
            "deobfuscate": config.get("deobfuscate"),  # what the model saw in training, it sees at predict time
        }
    spec = {
        "picked": picked.name,
        "picked_oof_auc": picked.oof_auc,
        "models": spec_models,
        "features": features,
        "n_folds": n_folds,
        "artifacts": str(artifacts.resolve()),
        "thresholds": thresholds.to_dict(),
    }
    with atomic.atomic_dir(directory) as tmp:
        atomic.write_json(tmp / ENSEMBLE_FILE, spec)
        np.savez(tmp / REFERENCES_FILE, **{name: models[name].oof for name in needed})
        if picked.boosters:
            (tmp / STACKER_DIR).mkdir()
            for k, booster in enumerate(picked.boosters):
                booster.save_model(str(tmp / STACKER_DIR / f"fold{k}.txt"))


@dataclass
class EnsemblePredictor:
    """Every fold model of every model the picked candidate needs, plus the stacker and the thresholds."""

    spec: dict[str, Any]
    fold_models: dict[str, list[ModelFamily]]
    references: dict[str, np.ndarray]
    boosters: list[lgb.Booster]
    thresholds: Thresholds

    @classmethod
    def load(cls, directory: str | Path, artifacts: str | Path | None = None) -> EnsemblePredictor:
        directory = Path(directory)
        spec_path = directory / ENSEMBLE_FILE
        if not spec_path.is_file():
            raise DaigtError(f"{spec_path}: no saved ensemble; run `python src/blend.py` first (it writes one)")
        spec = json.loads(spec_path.read_text())
        root = Path(artifacts) if artifacts else Path(spec["artifacts"])
        fold_models: dict[str, list[ModelFamily]] = {}
        for name, entry in spec["models"].items():
            family = get_family(entry["family"])
            fold_models[name] = []
            for k, run_key in enumerate(entry["run_keys"]):
                folder = fold_dir(root, name, k)
                retrain = f"python src/train_fold.py --fold {k} --model {name}, then python src/blend.py"
                if not (folder / METRICS_FILE).is_file():
                    raise DaigtError(f"{folder}: fold model of '{name}' ({entry['family']}) is missing; {retrain}")
                if json.loads((folder / METRICS_FILE).read_text()).get("run_key") != run_key:
                    raise DaigtError(f"{folder}: retrained since the blend that saved {directory}; rerun blend")
                fold_models[name].append(family.load(folder / MODEL_DIR))
        with np.load(directory / REFERENCES_FILE) as refs:
            references = {name: refs[name] for name in spec["models"]}
        boosters = [lgb.Booster(model_file=str(p)) for p in sorted((directory / STACKER_DIR).glob("fold*.txt"))]
        return cls(spec, fold_models, references, boosters, Thresholds.from_dict(spec["thresholds"]))

    def __post_init__(self) -> None:
        self.fold_predictors = {name: type(folds[0]).fold_predictor(folds) for name, folds in self.fold_models.items()}

    @property
    def picked(self) -> str:
        return str(self.spec["picked"])

    def model_probabilities(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each model's fold-mean probability, as its test.csv files are averaged in blend."""
        out = {}
        for name, predict in self.fold_predictors.items():
            seen = frame.assign(text=deobfuscate_texts(frame["text"], self.spec["models"][name].get("deobfuscate")))
            out[name] = predict(seen)
        return out

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        frame = frame.reset_index(drop=True)
        preds = self.model_probabilities(frame)
        if self.picked == STACKER:
            features = stack_features(preds, self.references, frame["text"], self.spec["features"])
            return np.clip(stacker_predict(self.boosters, features), 0.0, 1.0)
        if self.picked == RANK_MEAN:
            return rank_mean(preds, self.references)
        return np.clip(preds[self.picked], 0.0, 1.0)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return decide(probabilities, self.thresholds)

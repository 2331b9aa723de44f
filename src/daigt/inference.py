"""The saved ensemble: what blend picked, frozen so new essays get exactly the blend's scores.

``ensemble/`` (format: artifacts.py) holds the picked candidate, the stacker's features and fold boosters,
the thresholds, each model's OOF predictions (the reference for rank features) and the run key of every
fold model it was built from. The fold models themselves stay in ``artifacts/``; loading checks they are
still the ones the blend used.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from daigt.artifacts import ModelArtifacts, read_ensemble, write_ensemble
from daigt.attribution import Attributor
from daigt.calibration import Calibration
from daigt.config import DeobfuscateSpec
from daigt.decisions import DECISIONS, UNKNOWN, Thresholds, decide_with_reasons
from daigt.errors import DaigtError
from daigt.essay_stream import KEPT, STDIN, iter_essays
from daigt.families import ModelFamily, get_family
from daigt.hardening import deobfuscate_texts
from daigt.parallel import map_threads
from daigt.schema import parse, to_dict
from daigt.shift import ShiftConfig, ShiftScorer
from daigt.stacking import (
    RANK_MEAN,
    STACKER,
    Candidate,
    FeatureConfig,
    ModelPredictions,
    rank_mean,
    stack_features,
    stacker_predict,
)
from essayio import atomic, console

GENERATOR_COLUMNS = ("generator", "generator_probability")  # the second task's columns in predict and serve


def models_needed(picked: str, models: list[str]) -> list[str]:
    return models if picked in (RANK_MEAN, STACKER) else [picked]


@dataclass
class Ensemble:
    """What blend decided and ``save_ensemble`` freezes: the picked candidate and what its decisions need."""

    picked: Candidate
    features: FeatureConfig  # the stacker's inputs (a stacker picked reads them again at predict time)
    thresholds: Thresholds
    n_folds: int
    run_id: str | None = None  # the blend run whose submission and report it belongs to
    shift: ShiftConfig | None = None  # with shift_scorer: in_domain (None: every essay in domain)
    shift_scorer: ShiftScorer | None = None
    calibration: Calibration | None = None  # None: probability is the score
    attribution: Attributor | None = None  # None: no generator columns


def save_ensemble(
    directory: Path,
    artifacts: Path,
    models: dict[str, ModelPredictions],
    ensemble: Ensemble,
    published_at: Path | None = None,
) -> None:
    """Freeze what predict needs; written in one atomic rename (a half-saved ensemble never exists).
    ``published_at`` is where the folder will live when ``directory`` is a staging folder (relative paths are
    computed from there)."""
    picked, n_folds = ensemble.picked, ensemble.n_folds
    needed = models_needed(picked.name, list(models))
    spec_models = {}
    for name in needed:
        folds = [ModelArtifacts(artifacts, name).fold(k) for k in range(n_folds)]
        fold_metrics = [f.metrics() for f in folds]
        spec_models[name] = {
            "family": fold_metrics[0]["family"],
            "run_keys": [m["run_key"] for m in fold_metrics],
            # what the model saw in training, it sees at predict time
            "deobfuscate": to_dict(folds[0].deobfuscation()),
        }
    spec = {
        "picked": picked.name,
        "picked_oof_auc": picked.oof_auc,
        "models": spec_models,
        "features": to_dict(ensemble.features),
        "n_folds": n_folds,
        "artifacts": str(artifacts.resolve()),
        # relative to the ensemble folder: found again when both folders move together (e.g. into a package)
        "artifacts_relative": os.path.relpath(artifacts.resolve(), Path(published_at or directory).resolve().parent),
        "thresholds": ensemble.thresholds.to_dict(),
        "run_id": ensemble.run_id,
        "shift": to_dict(ensemble.shift) if ensemble.shift and ensemble.shift_scorer else None,
        "calibration": ensemble.calibration.to_dict() if ensemble.calibration else None,
    }
    arrays = ensemble.shift_scorer.to_arrays() if ensemble.shift and ensemble.shift_scorer else None
    references = {name: models[name].oof for name in needed}
    write_ensemble(directory, spec, references, picked.boosters, arrays, ensemble.attribution)


def artifacts_root(directory: Path, spec: dict[str, Any]) -> Path:
    """Where the ensemble's fold models are: beside it as saved (relative path, so the pair can move
    together), else where they were when it was saved (absolute path, so the ensemble can move alone; a
    package's copy has none: it names no folder of the machine that built it)."""
    candidates = [Path(spec["artifacts"])] if "artifacts" in spec else []
    if "artifacts_relative" in spec:
        candidates.insert(0, (directory.resolve().parent / spec["artifacts_relative"]).resolve())
    return next((c for c in candidates if c.is_dir()), candidates[0])


@dataclass
class EnsemblePredictor:
    """Every fold model of every model the picked candidate needs, plus the stacker and the thresholds."""

    spec: dict[str, Any]
    fold_models: dict[str, list[ModelFamily]]
    references: dict[str, np.ndarray]
    boosters: list[lgb.Booster]
    thresholds: Thresholds
    features: FeatureConfig
    deobfuscation: dict[str, DeobfuscateSpec | None]
    threads: int | None = None  # models scored side by side (None: one per core)
    shift: ShiftScorer | None = None  # None: an ensemble saved before the shift score (every essay in domain)
    calibration: Calibration | None = None  # None: probability is the score
    attribution: Attributor | None = None  # None: saved without the second task (no generator columns)

    @classmethod
    def load(
        cls, directory: str | Path, artifacts: str | Path | None = None, threads: int | None = None
    ) -> EnsemblePredictor:
        directory = Path(directory)
        saved = read_ensemble(directory)
        spec, source = saved.spec, str(directory)
        root = Path(artifacts) if artifacts else artifacts_root(directory, spec)

        def fold_models(name: str) -> list[ModelFamily]:
            entry = spec["models"][name]
            folders = []
            for k, run_key in enumerate(entry["run_keys"]):
                folder = ModelArtifacts(root, name).fold(k)
                retrain = f"python src/train_fold.py --fold {k} --model {name}, then python src/blend.py"
                if not folder.exists():
                    raise DaigtError(f"{folder.path}: fold model of '{name}' ({entry['family']}) is missing; {retrain}")
                metrics = folder.verified()  # a damaged fold names its file first
                if metrics.get("run_key") != run_key:
                    raise DaigtError(f"{folder.path}: retrained since the blend that saved {directory}; rerun blend")
                folders.append(folder)
            # one call for all folds: a family may share what they have in common (LoRA folds: one base)
            return get_family(entry["family"]).load_folds([f.model_dir for f in folders])

        deobfuscation: dict[str, DeobfuscateSpec | None] = {}
        for name, entry in spec["models"].items():
            spec_deobfuscate = entry.get("deobfuscate")
            deobfuscation[name] = None if spec_deobfuscate is None else parse(DeobfuscateSpec, spec_deobfuscate, source)
        models = map_threads(fold_models, list(spec["models"]), threads)
        boosters = [lgb.Booster(model_file=str(p)) for p in saved.booster_files]
        features = parse(FeatureConfig, spec["features"], source, "features")
        thresholds = Thresholds.from_dict(spec["thresholds"])
        shift = None
        if spec.get("shift") and saved.shift is not None:
            shift = ShiftScorer.from_arrays(saved.shift, parse(ShiftConfig, spec["shift"], source, "shift"))
        calibration = Calibration.from_dict(spec["calibration"]) if spec.get("calibration") else None
        return cls(
            spec, models, saved.references, boosters, thresholds, features, deobfuscation, threads, shift, calibration,
            saved.attribution,
        )  # fmt: skip

    def __post_init__(self) -> None:
        self.fold_predictors = {name: type(folds[0]).fold_predictor(folds) for name, folds in self.fold_models.items()}

    @property
    def picked(self) -> str:
        return str(self.spec["picked"])

    def model_probabilities(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each model's fold-mean probability, as its test.csv files are averaged in blend."""

        def score(name: str) -> np.ndarray:
            seen = frame.assign(text=deobfuscate_texts(frame["text"], self.deobfuscation[name]))
            return self.fold_predictors[name](seen)

        return map_threads(score, list(self.fold_predictors), self.threads)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        frame = frame.reset_index(drop=True)
        preds = self.model_probabilities(frame)
        if self.picked == STACKER:
            features = stack_features(preds, self.references, frame["text"], self.features)
            return np.clip(stacker_predict(self.boosters, features), 0.0, 1.0)
        if self.picked == RANK_MEAN:
            return rank_mean(preds, self.references)
        return np.clip(preds[self.picked], 0.0, 1.0)

    def in_domain(self, texts: Sequence[str]) -> np.ndarray:
        """How much each essay resembles the training essays (shift.py); 1 for all without a shift scorer."""
        return self.shift.in_domain(list(texts)) if self.shift is not None else np.ones(len(texts))

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """The calibrated probability of the picked candidate's scores (the score itself if uncalibrated)."""
        return self.calibration(scores) if self.calibration is not None else np.asarray(scores, dtype=float)

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """id, score (what the Kaggle submission holds), probability (calibrated), in_domain, decision, reason;
        with the second task saved, generator (a family, or unknown) and generator_probability (its top family's
        calibrated probability; NaN for a text not decided ai)."""
        frame = frame.reset_index(drop=True)
        scores = self.predict_proba(frame)
        in_domain = self.in_domain(frame["text"])
        decision, reason = decide_with_reasons(scores, self.thresholds, frame["text"], in_domain)
        scored = pd.DataFrame(
            {
                "id": frame["id"],
                "score": scores,
                "probability": self.probability(scores),
                "in_domain": in_domain,
                "decision": decision,
                "reason": reason,
            }
        )
        if self.attribution is not None:
            generator, probability = self.attribution.attribute(frame["text"], decision)
            scored[GENERATOR_COLUMNS[0]], scored[GENERATOR_COLUMNS[1]] = generator, probability
        return scored

    def summary(self, counts: Counter[tuple[str, str]]) -> str:
        """Counts by decision, and the unknowns by reason, with the cuts: predict's closing line."""
        total = sum(counts.values())
        per_decision = Counter({d: 0 for d in DECISIONS})
        for (decision, _), n in counts.items():
            per_decision[decision] += n
        summary = ", ".join(f"{d} {n} ({n / max(1, total):.1%})" for d, n in per_decision.items())
        why = ", ".join(f"{r} {n}" for (d, r), n in sorted(counts.items()) if d == UNKNOWN and n)
        t = self.thresholds
        edge = f", edge of domain: ai >= {t.edge_high:.4f}" if t.edge_high is not None and t.edge_below else ""
        return (
            f"{total} essays scored by {self.picked}: {summary}" + (f" (unknown: {why})" if why else "")
            + f"  [ai >= {t.high:.4f}, human < {t.low:.4f}, out of domain: in_domain < {t.out_of_domain_below:g}{edge}]"
        )  # fmt: skip

    def score_stream(
        self,
        source: str,
        columns: dict[str, str],
        batch_size: int,
        fmt: str | None = None,
        progress: bool = True,
        by: str | None = None,
    ) -> Iterator[pd.DataFrame]:
        """``score`` chunk by chunk over an essay file (or stdin), so any size fits in memory. With ``by``: the
        group column (``generator``: the predicted family), and the label where every row of the chunk has one,
        kept beside (``KEPT`` + name)."""
        predicted = by == GENERATOR_COLUMNS[0]  # --by generator: the second task's answer, not an input column
        if predicted and self.attribution is None:
            raise DaigtError(f"--by {by}: this ensemble ({self.spec.get('run_id')}) was saved without generator "
                             "attribution; rerun src/blend.py with attribution.enabled: true")  # fmt: skip
        keep = [by] if by and not predicted else []
        bar = console.bar(enabled=progress, desc="essays", unit=" essays")  # none for a few essays
        for frame in iter_essays(source, columns, chunk_rows=batch_size, fmt=fmt, keep=keep):
            scored = self.score(frame)
            if by:
                scored[KEPT + by] = (scored[by] if predicted else frame[KEPT + by]).to_numpy()
                if frame["label"].notna().all():
                    scored[KEPT + "label"] = frame["label"].to_numpy()
            yield scored
            bar.update(len(frame))
        bar.close()


@dataclass
class WrittenPredictions:
    """What ``write_predictions`` leaves: the counts by (decision, reason) and, when kept, every scored row."""

    counts: Counter[tuple[str, str]]
    scored: pd.DataFrame


def write_predictions(chunks: Iterable[pd.DataFrame], output: str | None, keep: bool) -> WrittenPredictions:
    """Predictions chunk by chunk: to ``output`` (a file, appearing in one rename at the end), to stdout
    (``STDIN``'s name, "-"), or nowhere (None); the columns kept beside for ``--by`` are not written. With
    ``keep``, every chunk is also kept (a submission is written whole, a per-group table needs all rows)."""
    counts: Counter[tuple[str, str]] = Counter()
    kept: list[pd.DataFrame] = []

    def each(write: Callable[[pd.DataFrame, bool], None] | None) -> None:
        for i, chunk in enumerate(chunks):
            if write is not None:
                write(chunk[[c for c in chunk.columns if not c.startswith(KEPT)]], i == 0)
            counts.update(zip(chunk["decision"], chunk["reason"], strict=True))
            if keep:
                kept.append(chunk)

    if output is None:
        each(None)
    elif output == STDIN:
        each(lambda frame, first: (frame.to_csv(sys.stdout, header=first, index=False), sys.stdout.flush()))
    else:
        with atomic.atomic_path(Path(output)) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
            each(lambda frame, first: frame.to_csv(handle, header=first, index=False))
    scored = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame({"id": [], "score": []})
    return WrittenPredictions(counts, scored)

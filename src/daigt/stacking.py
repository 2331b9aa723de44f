"""Level-2: gather every model's OOF / test predictions, stack them with LightGBM, pick the best.

The stacker is trained fold by fold on the same assignment as the models (fit on K-1 folds' OOF rows,
predict the held-out fold), so its OOF AUC is measured on rows it never saw. Its test prediction is the
mean of its K fold models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from daigt.artifacts import ModelArtifacts, model_names
from daigt.data import binary_labels
from daigt.errors import DaigtError
from daigt.metrics import auc
from daigt.schema import Invalid, to_dict
from daigt.stylometry import GROUPS, StyleConfig, selected_groups, style_features

RANK_MEAN, STACKER = "rank_mean", "stacker"


@dataclass
class FeatureConfig:
    """``features:`` of configs/blend.yaml: what the stacker sees for every row."""

    probabilities: bool = True  # each model's probability
    ranks: bool = False  # each model's rank (0..1) within its OOF predictions
    meta: bool | list[str] = False  # style feature groups (stylometry.py): true = all, or a list of groups
    stylometry: StyleConfig = field(default_factory=StyleConfig)

    def check(self) -> None:
        groups = self.meta if isinstance(self.meta, list) else []
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise Invalid(f"unknown group(s) {unknown} (known: {', '.join(GROUPS)})", "meta")
        if not (self.probabilities or self.ranks or selected_groups(self.meta)):
            raise Invalid("selects no stacker features: turn on probabilities, ranks or meta")


@dataclass
class StackerConfig:
    """``stacker:`` of configs/blend.yaml: the LightGBM classifier trained on the models' OOF predictions."""

    objective: str = "binary"
    metric: str = "auc"
    n_estimators: int = 1500
    learning_rate: float = 0.02
    num_leaves: int = 15
    max_depth: int = -1
    min_child_samples: int = 20
    subsample: float = 0.8
    subsample_freq: int = 1
    colsample_bytree: float = 0.8
    reg_alpha: float = 0.0
    reg_lambda: float = 1.0
    extra_trees: bool = True
    n_jobs: int = 2
    seed: int = 42

    def lightgbm_params(self) -> dict[str, Any]:
        params = to_dict(self)
        params.pop("seed")
        return params


@dataclass
class ModelPredictions:
    """One model's predictions aligned to the train rows (OOF) and the test rows (mean over folds)."""

    name: str
    oof: np.ndarray
    test: np.ndarray


def collect_models(
    artifacts: Path, train: pd.DataFrame, test_ids: pd.Series, n_folds: int
) -> tuple[dict[str, ModelPredictions], dict[str, str]]:
    """Every model with all folds present and matching the current data; the rest, with the reason."""
    complete: dict[str, ModelPredictions] = {}
    excluded: dict[str, str] = {}
    for name in model_names(artifacts):
        missing = ModelArtifacts(artifacts, name).missing_folds(n_folds)
        if missing:
            excluded[name] = f"partial: folds {missing} missing (python src/train_fold.py --fold all --model {name})"
            continue
        try:
            complete[name] = _load_model(artifacts, name, train, test_ids, n_folds)
        except DaigtError as err:
            excluded[name] = f"stale: {err}"
    return complete, excluded


def _load_model(artifacts: Path, name: str, train: pd.DataFrame, test_ids: pd.Series, n_folds: int) -> ModelPredictions:
    retrain = f"retrain with python src/train_fold.py --fold all --model {name} --force"
    oofs, tests = [], []
    for k in range(n_folds):
        folder = ModelArtifacts(artifacts, name).fold(k)
        oofs.append(folder.oof())
        test = folder.test()
        if not (len(test) == len(test_ids) and (test["id"].to_numpy() == test_ids.to_numpy()).all()):
            raise DaigtError(f"fold {k} predicted a different test file; {retrain}")
        tests.append(test["pred"].to_numpy(dtype=float))
    oof = pd.concat(oofs, ignore_index=True)
    merged = train[["id", "fold"]].merge(oof, on="id", how="left", suffixes=("", "_model"))
    if merged["pred"].isna().any() or len(oof) != len(train) or (merged["fold"] != merged["fold_model"]).any():
        raise DaigtError(f"its OOF rows do not match the current folds/training data; {retrain}")
    return ModelPredictions(name, merged["pred"].to_numpy(dtype=float), np.mean(tests, axis=0))


def ecdf_rank(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mid-rank of each value within ``reference`` (a model's OOF predictions), in [0, 1].

    Ranking against the OOF distribution rather than within the scored batch makes a rank feature mean the
    same for the test set, a single essay at predict time, and the OOF rows themselves.
    """
    ref = np.sort(np.asarray(reference, dtype=float))
    values = np.asarray(values, dtype=float)
    if len(ref) == 0:
        return np.full(len(values), 0.5)
    return (np.searchsorted(ref, values, side="left") + np.searchsorted(ref, values, side="right")) / (2 * len(ref))


def stack_features(
    preds: dict[str, np.ndarray], references: dict[str, np.ndarray], texts: pd.Series, cfg: FeatureConfig
) -> pd.DataFrame:
    """Stacker inputs for any rows: each model's probability, its OOF-referenced rank, style features.

    The one function used for the OOF rows, the test rows and predict-time essays, so they cannot drift apart.
    """
    cols: dict[str, np.ndarray] = {}
    for name, values in preds.items():
        if cfg.probabilities:
            cols[f"p_{name}"] = np.asarray(values, dtype=float)
        if cfg.ranks:
            cols[f"r_{name}"] = ecdf_rank(references[name], values)
    features = pd.DataFrame(cols)
    if selected_groups(cfg.meta):
        style = style_features(texts, cfg.meta, cfg.stylometry)
        features = pd.concat([features, style], axis=1)
    return features


def nested_stacker(
    oof_x: pd.DataFrame, labels: np.ndarray, folds: np.ndarray, test_x: pd.DataFrame, cfg: StackerConfig
) -> tuple[np.ndarray, np.ndarray, list[lgb.Booster]]:
    """OOF and test predictions of a LightGBM stacker trained on the models' own folds, and its fold boosters."""
    params = cfg.lightgbm_params()
    y = binary_labels(labels)
    oof = np.zeros(len(oof_x))
    boosters = []
    for k in np.unique(folds):
        fit = folds != k
        model = lgb.LGBMClassifier(**params, random_state=cfg.seed, deterministic=True, verbose=-1)
        model.fit(oof_x[fit], y[fit])
        oof[~fit] = model.predict_proba(oof_x[~fit])[:, 1]
        boosters.append(model.booster_)
    return oof, stacker_predict(boosters, test_x), boosters


def stacker_predict(boosters: list[lgb.Booster], features: pd.DataFrame) -> np.ndarray:
    """Mean probability of the fold boosters (what the blend submits for the test set).

    Columns are matched by name, not position: a config that reaches predict through JSON (sorted keys) may
    list its feature groups in another order than blend did."""
    if not len(features):
        return np.zeros(0)
    names = boosters[0].feature_name()
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise DaigtError(f"stacker features {missing} are not computed by this config; rerun blend")
    return np.mean([b.predict(features[names]) for b in boosters], axis=0)


@dataclass
class Candidate:
    name: str
    oof: np.ndarray
    test: np.ndarray
    oof_auc: float
    boosters: list[lgb.Booster] | None = None  # the stacker's fold models, kept so predict can reuse them


def build_candidates(
    models: dict[str, ModelPredictions],
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    features: FeatureConfig,
    stacker: StackerConfig,
) -> dict[str, Candidate]:
    """Each model alone, their rank average, and the stacker — all scored on the same OOF rows."""
    labels = train["label"].to_numpy(dtype=float)
    out = {name: Candidate(name, p.oof, p.test, auc(labels, p.oof)) for name, p in models.items()}
    refs = {name: p.oof for name, p in models.items()}
    rank_oof = rank_mean({n: p.oof for n, p in models.items()}, refs)
    rank_test = rank_mean({n: p.test for n, p in models.items()}, refs)
    out[RANK_MEAN] = Candidate(RANK_MEAN, rank_oof, rank_test, auc(labels, rank_oof))
    if selected_groups(features.meta) and test is None:
        raise DaigtError("features.meta needs the test texts: pass --test or set meta: false")
    test_texts = test["text"] if test is not None else pd.Series([], dtype=str)
    oof_x = stack_features({n: p.oof for n, p in models.items()}, refs, train["text"], features)
    test_x = stack_features({n: p.test for n, p in models.items()}, refs, test_texts, features)
    st_oof, st_test, boosters = nested_stacker(oof_x, labels, train["fold"].to_numpy(), test_x, stacker)
    out[STACKER] = Candidate(STACKER, st_oof, st_test, auc(labels, st_oof), boosters)
    return out


def rank_mean(preds: dict[str, np.ndarray], references: dict[str, np.ndarray]) -> np.ndarray:
    """Mean of the models' OOF-referenced ranks: a blend that ignores each model's calibration."""
    return np.mean([ecdf_rank(references[n], v) for n, v in preds.items()], axis=0)


def pick_candidate(candidates: dict[str, Candidate], pick: str) -> Candidate:
    if pick == "auto":
        return max(candidates.values(), key=lambda c: (np.nan_to_num(c.oof_auc, nan=-1.0), c.name == STACKER))
    if pick not in candidates:
        raise DaigtError(f"pick: '{pick}' is not a candidate (have: {', '.join(candidates)})")
    return candidates[pick]

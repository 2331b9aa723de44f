"""Level-2: gather every model's OOF / test predictions, stack them with LightGBM, pick the best.

The stacker is trained fold by fold on the same assignment as the models (fit on K-1 folds' OOF rows,
predict the held-out fold), so its OOF AUC is measured on rows it never saw. Its test prediction is the
mean of its K fold models.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from daigt.artifacts import ModelArtifacts, data_key, model_names
from daigt.config import fingerprint, frame_fingerprint
from daigt.data import binary_labels
from daigt.errors import DaigtError
from daigt.metrics import auc
from daigt.schema import Invalid, to_dict
from daigt.stylometry import GROUPS, StyleConfig, StyleMemo, selected_groups, style_features
from essayio import atomic

RANK_MEAN, STACKER = "rank_mean", "stacker"
STACKER_CACHE = "stacker-{key}.json"  # in the project's cache dir: the nested stacker fitted on these features
BEST_OOF = "best_oof"  # pick_fallback: the candidate with the best OOF AUC (in-distribution, so tuned-upward)
MODEL_COLUMN_PREFIXES = ("p_", "r_")  # stacker columns that carry a model's score (the rest are style features)


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

    objective: str = "binary"  # LightGBM's objective (binary: P(AI))
    metric: str = "auc"  # what early stopping and logs watch
    n_estimators: int = 1500  # boosting rounds
    learning_rate: float = 0.02  # shrinkage per round
    num_leaves: int = 15  # leaves per tree (model capacity)
    max_depth: int = -1  # -1: no depth limit beyond num_leaves
    min_child_samples: int = 20  # essays a leaf needs
    subsample: float = 0.8  # share of essays each tree sees
    subsample_freq: int = 1  # re-draw that share every this many rounds
    colsample_bytree: float = 0.8  # share of features each tree sees
    reg_alpha: float = 0.0  # L1 penalty on leaf weights
    reg_lambda: float = 1.0  # L2 penalty on leaf weights
    extra_trees: bool = True  # random split thresholds: steadier across seeds (docs/generalization.md)
    n_jobs: int = 2  # LightGBM threads
    seed: int = 42  # the stacker's seed (folds are the project's)
    # the stacker's score may only rise with each model's score: it can weigh the models and let style
    # features shift them, but not learn a non-monotone quirk of the training generators' score ranges
    monotone_in_models: bool = False

    def lightgbm_params(self, columns: list[str]) -> dict[str, Any]:
        params = to_dict(self)
        params.pop("seed")
        if params.pop("monotone_in_models"):
            params["monotone_constraints"] = [int(c.startswith(MODEL_COLUMN_PREFIXES)) for c in columns]
        return params


@dataclass
class ModelPredictions:
    """One model's predictions aligned to the train rows (OOF) and to each scored set's rows (mean over folds)."""

    name: str
    oof: np.ndarray
    scored: dict[str, np.ndarray]  # "test", "holdout", or a generalization split's evaluation rows
    oof_attacked: np.ndarray | None = None  # the same OOF rows, attacked (project stacker_attack), if scored


def collect_models(
    artifacts: Path,
    train: pd.DataFrame,
    scored_ids: dict[str, pd.Series],
    n_folds: int,
    command: Callable[[str], str] = lambda name: f"python src/train_fold.py --fold all --model {name}",
) -> tuple[dict[str, ModelPredictions], dict[str, str]]:
    """Every model with all folds present and matching the current data; the rest, with the reason and the
    ``command`` (model name -> fold-training command) that fixes it."""
    complete: dict[str, ModelPredictions] = {}
    excluded: dict[str, str] = {}
    for name in model_names(artifacts):
        missing = ModelArtifacts(artifacts, name).missing_folds(n_folds)
        if missing:
            excluded[name] = f"partial: folds {missing} missing ({command(name)})"
            continue
        try:
            complete[name] = _load_model(artifacts, name, train, scored_ids, n_folds, command(name))
        except DaigtError as err:
            excluded[name] = f"stale: {err}"
    return complete, excluded


def _load_model(
    artifacts: Path, name: str, train: pd.DataFrame, scored_ids: dict[str, pd.Series], n_folds: int, command: str
) -> ModelPredictions:
    retrain = f"retrain with {command}"
    oofs, scored = [], {s: [] for s in scored_ids}
    expected = data_key(train)
    for k in range(n_folds):
        folder = ModelArtifacts(artifacts, name).fold(k)
        if folder.verified().get("data_key") != expected:
            raise DaigtError(f"fold {k} was trained on other training data (texts, labels or folds); {retrain}")
        oofs.append(folder.oof())
        for set_name, ids in scored_ids.items():
            preds = folder.scored(set_name)
            if not (len(preds) == len(ids) and (preds["id"].to_numpy() == ids.to_numpy()).all()):
                raise DaigtError(f"fold {k} predicted a different {set_name} file; {retrain}")
            scored[set_name].append(preds["pred"].to_numpy(dtype=float))
    oof = pd.concat(oofs, ignore_index=True)
    merged = train[["id", "fold"]].merge(oof, on="id", how="left", suffixes=("", "_model"))
    if merged["pred"].isna().any() or len(oof) != len(train) or (merged["fold"] != merged["fold_model"]).any():
        raise DaigtError(f"its OOF rows do not match the current folds/training data; {retrain}")
    means = {s: np.mean(p, axis=0) if len(scored_ids[s]) else np.zeros(0) for s, p in scored.items()}
    attacked = [ModelArtifacts(artifacts, name).fold(k).oof_attacked() for k in range(n_folds)]
    oof_attacked = None
    if all(a is not None for a in attacked):
        by_id = pd.concat(attacked, ignore_index=True).set_index("id")["pred"]
        if set(by_id.index) == set(train["id"]):
            oof_attacked = by_id.loc[train["id"]].to_numpy(dtype=float)
    return ModelPredictions(name, merged["pred"].to_numpy(dtype=float), means, oof_attacked)


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
    preds: dict[str, np.ndarray],
    references: dict[str, np.ndarray],
    texts: pd.Series,
    cfg: FeatureConfig,
    style: StyleMemo | None = None,
) -> pd.DataFrame:
    """Stacker inputs for any rows: each model's probability, its OOF-referenced rank, style features.

    The one function used for the OOF rows, the test rows and predict-time essays, so they cannot drift apart.
    ``style`` reuses style features of essays seen before (the same values, computed once).
    """
    cols: dict[str, np.ndarray] = {}
    probability, rank = MODEL_COLUMN_PREFIXES
    for name, values in preds.items():
        if cfg.probabilities:
            cols[f"{probability}{name}"] = np.asarray(values, dtype=float)
        if cfg.ranks:
            cols[f"{rank}{name}"] = ecdf_rank(references[name], values)
    features = pd.DataFrame(cols)
    if selected_groups(cfg.meta):
        table = style(texts) if style is not None else style_features(texts, cfg.meta, cfg.stylometry)
        features = pd.concat([features, table], axis=1)
    return features


def nested_stacker(
    oof_x: pd.DataFrame, labels: np.ndarray, folds: np.ndarray, cfg: StackerConfig, cache_dir: Path | None = None
) -> tuple[np.ndarray, list[lgb.Booster]]:
    """OOF predictions of a LightGBM stacker trained on the models' own folds, and its fold boosters (whose
    mean, ``stacker_predict``, scores any other rows). With ``cache_dir``, kept there by content (features,
    labels, folds, config): a blend rerun with nothing it depends on changed reads it back, boosters and all."""
    if cache_dir is None:
        return _fit_nested_stacker(oof_x, labels, folds, cfg)
    key = fingerprint(
        {
            "stacker": to_dict(cfg),
            "columns": list(oof_x.columns),
            "rows": frame_fingerprint(oof_x.assign(_label=labels, _fold=folds), [*oof_x.columns, "_label", "_fold"]),
            "lightgbm": lgb.__version__,
        }
    )
    path = Path(cache_dir) / STACKER_CACHE.format(key=key)
    try:
        saved = json.loads(path.read_text())
        oof = np.asarray(saved["oof"], dtype=float)
        if oof.shape == (len(oof_x),):
            return oof, [lgb.Booster(model_str=text) for text in saved["boosters"]]
    except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError):
        pass  # not there or unreadable: fitted and written below
    oof, boosters = _fit_nested_stacker(oof_x, labels, folds, cfg)
    with contextlib.suppress(OSError):  # a cache only
        atomic.write_json(path, {"oof": oof.tolist(), "boosters": [b.model_to_string() for b in boosters]})
    return oof, boosters


def _fit_nested_stacker(
    oof_x: pd.DataFrame, labels: np.ndarray, folds: np.ndarray, cfg: StackerConfig
) -> tuple[np.ndarray, list[lgb.Booster]]:
    params = cfg.lightgbm_params(list(oof_x.columns))
    y = binary_labels(labels)
    oof = np.zeros(len(oof_x))
    boosters = []
    for k in np.unique(folds):
        fit = folds != k
        model = lgb.LGBMClassifier(**params, random_state=cfg.seed, deterministic=True, verbose=-1)
        model.fit(oof_x[fit], y[fit])
        oof[~fit] = model.predict_proba(oof_x[~fit])[:, 1]
        boosters.append(model.booster_)
    return oof, boosters


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
    scored: dict[str, np.ndarray]  # per scored set, like ModelPredictions.scored
    oof_auc: float
    boosters: list[lgb.Booster] | None = None  # the stacker's fold models, kept so predict can reuse them

    @property
    def test(self) -> np.ndarray:
        return self.scored["test"]


def build_candidates(
    models: dict[str, ModelPredictions],
    train: pd.DataFrame,
    scored: dict[str, pd.DataFrame],
    features: FeatureConfig,
    stacker: StackerConfig,
    style: StyleMemo | None = None,
    attacked_texts: pd.Series | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Candidate]:
    """Each model alone, their rank average, and the stacker — all scored on the same OOF rows, and each
    scored set (``scored``: name -> its rows, with text) predicted by every candidate.

    With ``attacked_texts`` (the training rows after the stacker's attack recipe) and every model's
    ``oof_attacked``, the stacker also trains on those attacked rows (same labels and folds), so style
    features an attack moves do not flip it; its OOF AUC is still measured on the clean rows. (Eight
    parameters: blend and each generalization split build the same candidates from their own rows.)"""
    labels = train["label"].to_numpy(dtype=float)
    out = {name: Candidate(name, p.oof, p.scored, auc(labels, p.oof)) for name, p in models.items()}
    refs = {name: p.oof for name, p in models.items()}

    def per_model(set_name: str) -> dict[str, np.ndarray]:
        return {n: p.oof if set_name == "oof" else p.scored[set_name] for n, p in models.items()}

    rank_scored = {s: rank_mean(per_model(s), refs) for s in scored}
    rank_oof = rank_mean(per_model("oof"), refs)
    out[RANK_MEAN] = Candidate(RANK_MEAN, rank_oof, rank_scored, auc(labels, rank_oof))
    oof_x = stack_features(per_model("oof"), refs, train["text"], features, style)
    fit_x, fit_labels, fit_folds = oof_x, labels, train["fold"].to_numpy()
    if attacked_texts is not None and all(p.oof_attacked is not None for p in models.values()):
        attacked_preds = {n: p.oof_attacked for n, p in models.items()}
        attacked_x = stack_features(attacked_preds, refs, attacked_texts.reset_index(drop=True), features, style)
        fit_x = pd.concat([oof_x, attacked_x], ignore_index=True)
        fit_labels, fit_folds = np.concatenate([labels, labels]), np.concatenate([fit_folds, fit_folds])
    st_fit_oof, boosters = nested_stacker(fit_x, fit_labels, fit_folds, stacker, cache_dir)
    st_oof = st_fit_oof[: len(train)]
    st_scored = {
        s: stacker_predict(boosters, stack_features(per_model(s), refs, frame["text"], features, style))
        for s, frame in scored.items()
    }
    out[STACKER] = Candidate(STACKER, st_oof, st_scored, auc(labels, st_oof), boosters)
    return out


def rank_mean(preds: dict[str, np.ndarray], references: dict[str, np.ndarray]) -> np.ndarray:
    """Mean of the models' OOF-referenced ranks: a blend that ignores each model's calibration."""
    return np.mean([ecdf_rank(references[n], v) for n, v in preds.items()], axis=0)


def pick_candidate(
    candidates: dict[str, Candidate],
    pick: str,
    generalization: dict[str, Any] | None = None,
    min_oof_auc: float = 0.0,
    fallback: str = BEST_OOF,
) -> Candidate:
    """A named candidate, or ``auto``: among candidates whose OOF AUC reaches ``min_oof_auc`` (all, if none
    does), the best held-out AUC averaged over every protocol of the generalization results (held-out sources
    and prompts, clean and attacked: each protocol's mean, then each protocol's minimum) when they are given,
    else ``fallback``: a candidate's name (when it is one) or ``best_oof``."""
    if pick == "auto" and generalization:
        summary = generalization["summary"]

        def held_out(c: Candidate) -> tuple[float, float]:
            return tuple(float(np.mean([summary[p][c.name][stat] for p in summary])) for stat in ("mean", "min"))

        eligible = [c for c in candidates.values() if c.oof_auc >= min_oof_auc] or list(candidates.values())
        return max(eligible, key=held_out)
    check_pick(pick, fallback, list(candidates))
    if pick == "auto" and fallback in candidates:
        return candidates[fallback]
    if pick == "auto":
        return max(candidates.values(), key=lambda c: (np.nan_to_num(c.oof_auc, nan=-1.0), c.name == STACKER))
    return candidates[pick]


def check_pick(pick: str, fallback: str, names: list[str]) -> None:
    """``pick`` is auto or one of the candidate ``names``; ``fallback`` is best_oof, rank_mean, stacker or one of
    them. Blend checks this before the stacker's work, so a typo costs nothing."""
    if pick != "auto" and pick not in names:
        raise DaigtError(f"pick: '{pick}' is not a candidate (have: {', '.join(names)})")
    if fallback not in names and fallback not in (BEST_OOF, RANK_MEAN, STACKER):
        raise DaigtError(f"pick_fallback: '{fallback}' is neither {BEST_OOF} nor a candidate ({', '.join(names)})")

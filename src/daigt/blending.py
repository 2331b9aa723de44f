"""``blend``: models' artifacts -> candidates (each model, rank mean, stacker) -> the picked one as a validated
submission.csv, with report.md/json, plots, the error analysis and the saved ensemble for predict/serve."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daigt.analysis import write_analysis
from daigt.config import repo_path
from daigt.decisions import DecisionConfig, choose_thresholds
from daigt.errors import DaigtError
from daigt.inference import save_ensemble
from daigt.metrics import auc, per_group_auc
from daigt.project import Project
from daigt.report import markdown, roc_plot
from daigt.stacking import STACKER, FeatureConfig, StackerConfig, build_candidates, collect_models, pick_candidate
from daigt.submission import validate_submission
from essayio import atomic


@dataclass
class BlendConfig:
    """configs/blend.yaml."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    stacker: StackerConfig = field(default_factory=StackerConfig)
    pick: str = "auto"  # auto: the best candidate by OOF AUC; or a candidate's name
    output: str = "submissions/submission.csv"  # with report.md/json, plots and analysis beside it
    ensemble: str = "ensemble"  # what predict/serve load
    decisions: DecisionConfig = field(default_factory=DecisionConfig)


@dataclass
class BlendResult:
    submission: pd.DataFrame
    report: dict[str, Any]
    out_path: Path


def blend(
    project: Project, cfg: BlendConfig, out_path: Path, sample: Path | None = None, ensemble_dir: Path | None = None
) -> BlendResult:
    train, _ = project.train_frame()
    test = project.test_frame()
    models, excluded = collect_models(project.artifacts, train, test["id"], project.folds.n_folds)
    for name, reason in excluded.items():
        print(f"WARNING: model '{name}' left out of the blend — {reason}", file=sys.stderr)
    if not models:
        raise DaigtError(
            f"no complete model under {project.artifacts}: run `python src/train_fold.py --fold all` first"
        )
    candidates = build_candidates(models, train, test, cfg.features, cfg.stacker)
    chosen = pick_candidate(candidates, cfg.pick)

    submission = pd.DataFrame({"id": test["id"].to_numpy(), "generated": np.clip(chosen.test, 0.0, 1.0)})
    sample = sample or project.sample_submission_path()
    validate_submission(submission, test["id"], sample)

    labels = train["label"].to_numpy(dtype=float)
    report: dict[str, Any] = {
        "picked": chosen.name,
        "picked_oof_auc": chosen.oof_auc,
        "n_train": len(train),
        "n_test": len(test),
        "n_folds": project.folds.n_folds,
        "candidates": {
            name: {
                "oof_auc": c.oof_auc,
                "fold_auc": _fold_aucs(labels, c.oof, train["fold"].to_numpy()),
            }
            for name, c in candidates.items()
        },
        "excluded": excluded,
        "validated_against": str(sample) if sample else None,
    }
    report["stacking"] = stacking_verdict(models, candidates)
    if train["source"].str.len().gt(0).any():
        sources = train["source"].to_numpy()
        per_candidate = {n: per_group_auc(labels, c.oof, sources) for n, c in candidates.items()}
        report["per_source"] = {
            s: {"n": int((sources == s).sum()), "auc": {n: per_candidate[n][s] for n in candidates}}
            for s in sorted(set(sources))
        }

    thresholds = choose_thresholds(labels, chosen.oof, cfg.decisions)
    report["thresholds"] = thresholds.to_dict()
    ensemble_dir = ensemble_dir or repo_path(cfg.ensemble)
    save_ensemble(ensemble_dir, project.artifacts, models, chosen, cfg.features, thresholds, project.folds.n_folds)
    report["ensemble"] = str(ensemble_dir)

    out_dir = out_path.parent
    write_analysis(out_dir, train, chosen.oof, thresholds, chosen.name)
    roc_plot(
        out_dir / "roc.png",
        labels,
        {n: c.oof for n, c in candidates.items()},
        {n: c.oof_auc for n, c in candidates.items()},
    )
    atomic.write_json(out_dir / "report.json", report)
    atomic.write_text(out_dir / "report.md", markdown(report))
    atomic.write_csv(out_path, submission)  # last: the submission exists only if everything before worked
    return BlendResult(submission, report, out_path)


def stacking_verdict(models: dict[str, Any], candidates: dict[str, Any]) -> dict[str, Any]:
    """Does the stacker beat the best single model? With the models' OOF rank correlations as the evidence."""
    best = max(models, key=lambda n: np.nan_to_num(candidates[n].oof_auc, nan=-1.0))
    names = list(models)
    corr = pd.DataFrame({n: candidates[n].oof for n in names}).corr(method="spearman")
    return {
        "best_single": best,
        "best_single_auc": candidates[best].oof_auc,
        "stacker_auc": candidates[STACKER].oof_auc,
        "gain": candidates[STACKER].oof_auc - candidates[best].oof_auc,
        "oof_rank_correlation": {a: {b: float(corr.loc[a, b]) for b in names} for a in names},
    }


def _fold_aucs(labels: np.ndarray, preds: np.ndarray, folds: np.ndarray) -> list[float]:
    return [auc(labels[folds == k], preds[folds == k]) for k in np.unique(folds)]

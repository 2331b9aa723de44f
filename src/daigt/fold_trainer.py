"""Fold training: fit a family on K-1 folds, predict the held-out fold and the test set, write artifacts.

Each fold is written as one unit (``artifacts.FoldFolder.write``: OOF and test predictions, metrics, the
resolved config, the fitted model), so its existence means the fold is complete; a rerun skips folds whose
``run_key`` (config, seed, data, folds) is unchanged.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daigt import distributed
from daigt.artifacts import ModelArtifacts, data_key
from daigt.config import (
    BLEND_CONFIG,
    ModelConfig,
    PseudoSpec,
    WeightingSpec,
    fingerprint,
    frame_fingerprint,
    load_yaml,
    profiled_yaml,
    repo_path,
)
from daigt.decisions import DecisionConfig
from daigt.errors import DaigtError
from daigt.families import FitContext, ModelFamily
from daigt.families.base import population_weights
from daigt.hardening import ATTACKED, Hardening, attacked, for_fold
from daigt.metrics import auc, peak_rss_mb
from daigt.model_configs import ModelSpec
from daigt.project import Project
from daigt.schema import parse, to_dict
from daigt.shift import MIN_TEST_FOR_SHIFT, ShiftConfig, ShiftScorer
from essayio import atomic, console
from essayio.publish import sweep

PSEUDO_ID = "pseudo:"
FoldCallback = Callable[[dict[str, Any]], None]  # told each fold's metrics as the fold is written
SHIFT_CACHE = "shift-{key}.json"  # in the project's cache dir: a test file's measured distance from train


def measure_test_shift(train: pd.DataFrame, test: pd.DataFrame, cache_dir: Path) -> tuple[float, float]:
    """The share of test essays out of domain (shift.py, as configs/blend.yaml's shift: and decisions: say),
    and the share over which the test set counts as far from train; cached by content."""
    blend, source = profiled_yaml("blend", BLEND_CONFIG)
    shift = parse(ShiftConfig, blend.get("shift") or {}, source, "shift")
    cut = parse(DecisionConfig, blend.get("decisions") or {}, source, "decisions").out_of_domain_share
    key = fingerprint(
        {
            "shift": to_dict(shift),
            "cut": cut,
            "train": frame_fingerprint(train, ["id", "text", "label", "fold"]),
            "test": frame_fingerprint(test, ["id", "text"]),
        }
    )
    cache = cache_dir / SHIFT_CACHE.format(key=key[:16])
    if cache.is_file():
        return float(json.loads(cache.read_text())["out_of_domain"]), shift.far_test_share
    labels, folds = train["label"].to_numpy(dtype=float), train["fold"].to_numpy()
    console.stage(f"[data] measuring how far the {len(test):,} test essays are from the training essays")
    scorer = ShiftScorer.fit_cached(train["text"], labels, folds, shift, cache_dir)  # the blend reads it back
    share = float(np.mean(scorer.in_domain(test["text"]) < cut))
    atomic.write_json(cache, {"out_of_domain": share, "n_test": len(test)})
    return share, shift.far_test_share


def pseudo_rows(test: pd.DataFrame, pred: np.ndarray, share: float) -> pd.DataFrame:
    """The ``share`` of test essays scored highest (labelled 1) and lowest (labelled 0), as training rows."""
    n = max(1, int(len(test) * share))
    order = np.argsort(pred, kind="stable")
    chosen = np.concatenate([order[:n], order[-n:]])
    labels = np.concatenate([np.zeros(n), np.ones(n)])
    rows = test.iloc[chosen][["id", "text"]].reset_index(drop=True)
    return rows.assign(id=PSEUDO_ID + rows["id"].astype(str), label=labels, group="", source="")


@dataclass
class FitResult:
    scores: dict[str, np.ndarray]  # per scored frame
    n_pseudo: int  # pseudo-labelled test essays in the last fit
    fit_seconds: float
    predict_seconds: float


def fit_and_score(
    model: ModelFamily,
    fit_rows: pd.DataFrame,
    context: FitContext,
    scored: dict[str, pd.DataFrame],
    pseudo: PseudoSpec | None = None,
    weighting: WeightingSpec | None = None,
) -> FitResult:
    """Fit on ``fit_rows`` (then, with ``pseudo``, refit with the test essays this model is surest about) and
    score every frame of ``scored``: one fold's work, for the fold trainer and the generalization protocols.
    ``weighting`` weighs every fit (pseudo rounds included) by population."""

    def weighed(rows: pd.DataFrame) -> pd.DataFrame:
        if weighting is None:
            return rows
        return rows.assign(weight=population_weights(rows, weighting.by, weighting.power))

    started = time.perf_counter()
    model.fit(weighed(fit_rows), context)
    test = context.unlabeled
    n_pseudo = 0
    if pseudo is not None and test is not None and len(test) >= pseudo.min_test:
        for round_ in range(1, pseudo.rounds + 1):
            extra = pseudo_rows(test, model.predict(test), pseudo.share)
            n_pseudo = len(extra)
            workdir = None if context.workdir is None else context.workdir / f"pseudo{round_}"
            model.fit(weighed(pd.concat([fit_rows, extra], ignore_index=True)), replace(context, workdir=workdir))
    fitted = time.perf_counter()
    scores = {name: model.predict(frame) if len(frame) else np.zeros(0) for name, frame in scored.items()}
    return FitResult(scores, n_pseudo, round(fitted - started, 3), round(time.perf_counter() - fitted, 3))


@dataclass
class FoldTrainer:
    """Trains one model config over the requested folds of one project."""

    project: Project
    spec: ModelSpec
    seed: int
    progress: bool = True

    @property
    def model_name(self) -> str:
        return self.spec.name

    @property
    def model_config(self) -> ModelConfig:
        return self.spec.config

    @cached_property
    def hardening(self) -> Hardening:
        return Hardening.from_model_config(self.model_config)

    @cached_property
    def artifacts(self) -> ModelArtifacts:
        return ModelArtifacts(self.project.artifacts, self.model_name)

    def resolved_config(self) -> dict[str, Any]:
        """The model config with every default filled in, and what else decides the fold's result."""
        return {
            **self.model_config.to_dict(),
            "model": self.model_name,
            "seed": self.seed,
            "train": str(self.project.train_path),
            "test": str(self.project.test_path),
            "folds": to_dict(self.project.folds),
            "dedup": to_dict(self.project.dedup),
            "columns": self.project.columns,
            **self.hardening.key(),
            "stacker_attack": load_yaml(repo_path(self.stacker_attack)) if self.stacker_attack else None,
        }

    @property
    def stacker_attack(self) -> str | None:
        return self.project.config.stacker_attack

    def config_without_paths(self) -> dict[str, Any]:
        """The resolved config without the data paths: the data is compared by content, so the same file
        under another spelling of its path (relative, absolute, moved) is the same run."""
        resolved = self.resolved_config()
        del resolved["train"], resolved["test"]
        return resolved

    def config_key(self) -> str:
        """The model's identity for the generalization figures (evaluate reads no test file)."""
        return fingerprint(self.config_without_paths())

    def run(
        self, folds: list[int] | None = None, force: bool = False, on_fold: FoldCallback | None = None
    ) -> list[dict[str, Any]]:
        """Train the ``folds`` not yet up to date (all by default); ``on_fold``: called with each fold's metrics as
        it is written, so a long run reports fold by fold (in a --jobs worker too)."""
        train, _ = self.project.train_frame()
        test, holdout = self.project.test_frame(), self.project.holdout_frame()
        n_folds = self.project.folds.n_folds
        transductive = self.transductive(train, test)
        wanted = list(range(n_folds)) if folds is None else folds
        bad = [k for k in wanted if not 0 <= k < n_folds]
        if bad:
            raise DaigtError(f"fold {bad[0]} does not exist: folds are 0..{n_folds - 1} (or 'all')")
        run_key = fingerprint(
            {
                "config": self.config_without_paths(),
                "train": frame_fingerprint(train, ["id", "text", "label", "fold"]),
                "test": frame_fingerprint(test, ["id", "text"]),
                "holdout": frame_fingerprint(holdout, ["id", "text"]),
                **({} if transductive else {"transductive": False}),  # (absent: the keys of earlier runs hold)
            }
        )
        todo = self._folds_to_train(wanted, run_key, force)
        results = [self.artifacts.fold(k).metrics() for k in wanted if k not in todo]
        if not todo:
            return results
        model = self.spec.build(self.seed)
        hardening = self.hardening
        recipe = self.stacker_attack
        under_attack = hardening.clean(attacked(train, recipe, self.project.cache_dir)) if recipe else None
        train, test, holdout = hardening.clean(train), hardening.clean(test), hardening.clean(holdout)
        bars = self.progress and distributed.is_main() and console.bars_on()  # augment/ is a leaf: it is told
        copies = hardening.copies(train, progress=bars)
        corpus = pd.concat([train, copies], ignore_index=True).assign(scored_only=False)
        scored_only = pd.concat([test.assign(scored_only=not transductive), holdout.assign(scored_only=True)])
        prepared = pd.concat([corpus, scored_only], ignore_index=True)
        if distributed.is_main():
            console.stage(f"[{self.model_name}] preparing {len(prepared):,} essays (train, copies, test, holdout)")
        model.prepare(prepared)
        bar = console.bar(todo, self.progress and distributed.is_main(), desc=f"{self.model_name} folds", unit="fold")
        for k in bar:
            results.append(
                self._train_fold(
                    model, train, copies, {"test": test, "holdout": holdout}, k, run_key, under_attack, transductive
                )
            )
            bar.set_postfix(auc=f"{results[-1]['auc']:.4f}")
            if on_fold is not None and distributed.is_main():
                on_fold(results[-1])
        return sorted(results, key=lambda m: m["fold"])

    def _folds_to_train(self, wanted: list[int], run_key: str, force: bool) -> list[int]:
        """The wanted folds not up to date under ``run_key``; a fold kept from an earlier run under this very key
        comes back instead of being retrained. Each skipped fold is said."""
        if distributed.is_main():
            sweep(self.artifacts.path)  # half-written fold folders of killed runs
        todo = [k for k in wanted if force or not self._is_done(k, run_key)]
        single = distributed.world_size() == 1 and not force  # one process: ranks would race on a restore
        restored = [k for k in todo if single and self.artifacts.fold(k).restore_kept(run_key)]
        for k in restored:
            console.say(f"[{self.model_name}] fold {k}: restored, trained before under this config and data")
        todo = [k for k in todo if k not in restored]
        for k in sorted(set(wanted) - set(todo)) if distributed.is_main() else []:
            console.say(f"[{self.model_name}] fold {k}: up to date in {self.artifacts.fold(k).path} (--force retrains)")
        return todo

    def transductive(self, train: pd.DataFrame, test: pd.DataFrame) -> bool:
        """May this run's models learn from the test essays (pseudo-labels, test-fitted vocabularies and
        tokenizers)? Not from a test set far from the training essays: what they learn there pulls the model
        towards another population (other-domain AUC fell from 0.57 to 0.37 with them)."""
        if len(test) < MIN_TEST_FOR_SHIFT:
            return True
        share, far = measure_test_shift(train, test, self.project.cache_dir)
        if share <= far:
            return True
        if distributed.is_main():  # in --jobs workers too: one line per model
            console.warn(
                f"[{self.model_name}] {share:.0%} of the test essays are out of domain (over "
                f"shift.far_test_share {far:.0%}): no pseudo-labels or test-fitted vocabularies for this test set"
            )
        return False

    def _workdir(self, fold: int, run_key: str) -> Path:
        """Checkpoints of an unfinished fold survive a crash; ones from another config or data are dropped."""
        workdir = self.artifacts.workdir(fold)
        stamp = workdir / "run_key"
        if distributed.is_main():
            if workdir.exists() and (not stamp.is_file() or stamp.read_text() != run_key):
                shutil.rmtree(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            atomic.write_text(stamp, run_key)
        return workdir

    def _is_done(self, fold: int, run_key: str) -> bool:
        folder = self.artifacts.fold(fold)
        if not folder.exists():
            return False
        try:
            return folder.verified().get("run_key") == run_key
        except DaigtError as err:  # a deleted or damaged file: repair by retraining, and say so
            console.warn(f"[{self.model_name}] fold {fold}: {err} — retraining it")
            return False

    def _train_fold(
        self,
        model: ModelFamily,
        train: pd.DataFrame,
        copies: pd.DataFrame,
        scored: dict[str, pd.DataFrame],
        fold: int,
        run_key: str,
        under_attack: pd.DataFrame | None = None,
        transductive: bool = True,
    ) -> dict[str, Any]:
        """One fold: fit, score OOF/test/holdout (and the attacked OOF), write the fold folder. (Eight
        parameters: what ``run`` prepared once for every fold, passed as it is.)"""
        fit_rows, held_out = train[train["fold"] != fold], train[train["fold"] == fold]
        extra = {} if under_attack is None else {ATTACKED: under_attack[(train["fold"] == fold).to_numpy()]}
        n_original = len(fit_rows)
        fit_rows = for_fold(copies, fit_rows)  # copies of held-out essays never train this fold
        workdir = self._workdir(fold, run_key)
        test = scored["test"]
        context = FitContext(
            held_out=held_out[["id", "text", "label"]],
            unlabeled=test[["id", "text"]] if transductive else None,
            workdir=workdir,
            progress=self.progress,
            epoch_texts=self.hardening.epoch_texts(),
        )
        config = self.model_config
        pseudo, weighting = config.pseudo if transductive else None, config.weighting
        result = fit_and_score(model, fit_rows, context, {"oof": held_out, **scored, **extra}, pseudo, weighting)
        preds = result.scores
        oof = held_out[["id", "fold", "label"]].assign(pred=preds.pop("oof"))
        oof_attacked = held_out[["id"]].assign(pred=preds.pop(ATTACKED)) if extra else None
        outputs = {name: frame[["id"]].assign(pred=preds[name]) for name, frame in scored.items()}
        metrics = {
            "model": self.model_name,
            "family": self.model_config.family,
            "fold": fold,
            "auc": auc(oof["label"], oof["pred"]),
            "n_train": n_original,
            "n_augmented_copies": len(fit_rows) - n_original,
            "n_pseudo": result.n_pseudo,
            "n_valid": len(held_out),
            "n_test": len(test),
            "n_holdout": len(scored["holdout"]),
            "holdout_auc": auc(scored["holdout"]["label"], preds["holdout"]) if len(scored["holdout"]) else None,
            "fit_seconds": result.fit_seconds,
            "predict_seconds": result.predict_seconds,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "seed": self.seed,
            "overrides": list(self.spec.overrides),  # (the run key has their effect: the resolved config)
            "run_key": run_key,
            "data_key": data_key(train),
            "config_key": self.config_key(),  # what src/evaluate.py's figures are keyed by
            **model.fit_report(),
        }
        if not distributed.is_main():  # other ranks trained and predicted with rank 0; it alone writes
            return metrics
        self.artifacts.fold(fold).write(oof, outputs, self.resolved_config(), metrics, model.save, oof_attacked)
        shutil.rmtree(workdir, ignore_errors=True)
        return metrics

"""Fold training: fit a family on K-1 folds, predict the held-out fold and the test set, write artifacts.

Each fold is written as one unit (``artifacts.FoldFolder.write``: OOF and test predictions, metrics, the
resolved config, the fitted model), so its existence means the fold is complete; a rerun skips folds whose
``run_key`` (config, seed, data, folds) is unchanged.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from daigt import distributed
from daigt.artifacts import ModelArtifacts
from daigt.config import ModelConfig, fingerprint
from daigt.errors import DaigtError
from daigt.families import FitContext, ModelFamily, get_family
from daigt.hardening import Hardening, for_fold
from daigt.metrics import auc, peak_rss_mb
from daigt.project import Project
from daigt.schema import to_dict
from essayio import atomic


def frame_fingerprint(frame: pd.DataFrame, columns: list[str]) -> str:
    digest = hashlib.sha1()
    for column in columns:
        digest.update(pd.util.hash_pandas_object(frame[column], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class FoldTrainer:
    """Trains one model config over the requested folds of one project."""

    project: Project
    model_name: str
    model_config: ModelConfig
    seed: int
    progress: bool = True

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
        }

    def run(self, folds: list[int] | None = None, force: bool = False) -> list[dict[str, Any]]:
        train, _ = self.project.train_frame()
        test = self.project.test_frame()
        n_folds = self.project.folds.n_folds
        wanted = list(range(n_folds)) if folds is None else folds
        bad = [k for k in wanted if not 0 <= k < n_folds]
        if bad:
            raise DaigtError(f"fold {bad[0]} does not exist: folds are 0..{n_folds - 1} (or 'all')")
        run_key = fingerprint(
            {
                "config": self.resolved_config(),
                "train": frame_fingerprint(train, ["id", "text", "label", "fold"]),
                "test": frame_fingerprint(test, ["id", "text"]),
            }
        )
        todo = [k for k in wanted if force or not self._is_done(k, run_key)]
        for k in sorted(set(wanted) - set(todo)) if distributed.is_main() else []:
            print(f"[{self.model_name}] fold {k}: up to date in {self.artifacts.fold(k).path} (use --force to retrain)")
        results = [self.artifacts.fold(k).metrics() for k in wanted if k not in todo]
        if not todo:
            return results
        family_cls = get_family(self.model_config.family)
        model = family_cls(self.model_config.params, self.seed)
        hardening = self.hardening
        train, test = hardening.clean(train), hardening.clean(test)
        copies = hardening.copies(train, progress=self.progress and distributed.is_main())
        model.prepare(pd.concat([train, copies, test], ignore_index=True))
        bar = tqdm(
            todo, desc=f"{self.model_name} folds", unit="fold", disable=not (self.progress and distributed.is_main())
        )
        for k in bar:
            results.append(self._train_fold(model, train, copies, test, k, run_key))
            bar.set_postfix(auc=f"{results[-1]['auc']:.4f}")
        return sorted(results, key=lambda m: m["fold"])

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
        return self.artifacts.fold(fold).run_key() == run_key

    def _train_fold(
        self, model: ModelFamily, train: pd.DataFrame, copies: pd.DataFrame, test: pd.DataFrame, fold: int, run_key: str
    ) -> dict[str, Any]:
        fit_rows, held_out = train[train["fold"] != fold], train[train["fold"] == fold]
        n_original = len(fit_rows)
        fit_rows = for_fold(copies, fit_rows)  # copies of held-out essays never train this fold
        workdir = self._workdir(fold, run_key)
        context = FitContext(
            unlabeled=test[["id", "text"]],
            workdir=workdir,
            progress=self.progress,
            epoch_texts=self.hardening.epoch_texts(),
        )
        started = time.perf_counter()
        model.fit(fit_rows, context)
        fitted = time.perf_counter()
        oof = held_out[["id", "fold", "label"]].assign(pred=model.predict(held_out))
        test_preds = test[["id"]].assign(pred=model.predict(test))
        predicted = time.perf_counter()
        metrics = {
            "model": self.model_name,
            "family": self.model_config.family,
            "fold": fold,
            "auc": auc(oof["label"], oof["pred"]),
            "n_train": n_original,
            "n_augmented_copies": len(fit_rows) - n_original,
            "n_valid": len(held_out),
            "n_test": len(test),
            "fit_seconds": round(fitted - started, 3),
            "predict_seconds": round(predicted - fitted, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "seed": self.seed,
            "run_key": run_key,
            **model.fit_report(),
        }
        if not distributed.is_main():  # other ranks trained and predicted with rank 0; it alone writes
            return metrics
        self.artifacts.fold(fold).write(oof, test_preds, self.resolved_config(), metrics, model.save)
        shutil.rmtree(workdir, ignore_errors=True)
        return metrics

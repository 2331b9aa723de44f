"""The one interface every model family implements: fit on train folds, predict a frame, save/load.

A family declares its parameters as a dataclass (``Params``); configs are validated against it, so a
misspelled key is an error and the defaults live in one place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from daigt.schema import parse


@dataclass
class FitContext:
    """What a family may use besides its training rows.

    ``unlabeled``: the test essays (text only) — TF-IDF can fit its vocabulary on them, as the public
    DAIGT recipe does. ``workdir``: a folder that survives a crash, for checkpoints a rerun resumes from.
    ``epoch_texts``: for families that train in epochs, the texts of the fit rows for an epoch (a fresh
    augmented copy each epoch, cleaned like every other text); None trains on the rows' own texts.
    ``held_out``: the fold's held-out rows (id, text, label). Only a family told to watch them while training
    may look (transformer ``evaluation.rows: held_out_fold``, the winning solutions' way, which makes OOF
    optimistic); predictions for them come from ``predict`` like any other rows.
    """

    unlabeled: pd.DataFrame | None = None
    workdir: Path | None = None
    progress: bool = True
    epoch_texts: Callable[[pd.DataFrame, int], pd.Series] | None = None
    held_out: pd.DataFrame | None = None

    def unlabeled_texts(self) -> list[str]:
        """The test essays' texts (none when there are no test essays)."""
        return [] if self.unlabeled is None else self.unlabeled["text"].tolist()


def fittable_texts(corpus: pd.DataFrame) -> list[str]:
    """The distinct texts of a prepared corpus a model may shape itself on (a tokenizer, a vocabulary): every row
    but the ``scored_only`` ones (the locked holdout), as the ``prepare`` contract says."""
    rows = corpus[~corpus["scored_only"]] if "scored_only" in corpus else corpus
    return list(dict.fromkeys(rows["text"]))


class ModelFamily(ABC):
    """A model family: built from its typed ``Params`` and a seed; frames are canonical (data.py)."""

    Params: ClassVar[type]  # a dataclass: the keys a config's ``params:`` may hold, with their defaults
    trains_in_epochs: ClassVar[bool] = False  # True: honours FitContext.epoch_texts (augment.each_epoch)
    takes_row_weights: ClassVar[bool] = False  # True: fit honours a ``weight`` column (weighting:)
    # distributions it needs at run time beyond requirements-kaggle.txt (the offline Kaggle package adds them)
    requirements: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Any, seed: int) -> None:
        if not isinstance(params, self.Params):
            params = parse(self.Params, dict(params or {}), f"params of {type(self).__name__}")
        self.params = params
        self.seed = seed

    def prepare(self, corpus: pd.DataFrame) -> None:  # noqa: B027 - optional hook, default does nothing
        """Label-free work shared by all folds of one run (e.g. counting n-grams once). Optional.

        ``corpus`` holds every essay the run will fit on or score (text, no labels). Rows whose ``scored_only``
        column is true (the locked holdout) may be cached but must never shape the model (no vocabulary or
        tokenizer fitted on them)."""

    @abstractmethod
    def fit(self, train: pd.DataFrame, context: FitContext) -> None:
        """Learn from ``train`` (id, text, label in [0, 1], ...)."""

    @abstractmethod
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability that each row of ``frame`` is AI-generated, shape (len(frame),), in [0, 1]."""

    @classmethod
    def load_folds(cls, directories: Sequence[Path]) -> list[ModelFamily]:
        """A model's fold models, for predicting together; families may share what folds have in common
        (LoRA folds of one base share that base)."""
        return [cls.load(directory) for directory in directories]

    @classmethod
    def fold_predictor(cls, models: Sequence[ModelFamily]) -> Callable[[pd.DataFrame], np.ndarray]:
        """Mean probability of a model's fold models; families may share work across folds (TF-IDF does)."""
        return lambda frame: np.mean([m.predict(frame) for m in models], axis=0)

    def fit_report(self) -> dict[str, Any]:
        """Figures from the last ``fit`` worth keeping in the fold's metrics (throughput, resumed step, ...)."""
        return {}

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write everything ``load`` needs into ``directory`` (which exists and is empty)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> ModelFamily:
        """Rebuild a fitted model from ``save``'s output."""

    # True where ``save_compact`` writes a smaller form than ``save``: the package re-saves those fold models
    has_compact_form: ClassVar[bool] = False

    def save_compact(self, directory: Path) -> None:
        """``save`` traded for size (lossless; ``load`` reads either): what the offline Kaggle package ships.
        Training saves the fast form, so an iteration never waits on compression; the package pays it once."""
        self.save(directory)


def expand_soft_labels(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Turn soft labels into hard targets with weights: a row with p becomes (1, w=p) and (0, w=1-p).

    For log-loss models this is exactly training on the soft label; hard labels stay one row each. A
    ``weight`` column (``weighting:``) multiplies both. Returns (rows, targets, sample_weights).
    """
    label = frame["label"].to_numpy(dtype=float)
    row_weight = frame["weight"].to_numpy(dtype=float) if "weight" in frame else np.ones(len(frame))
    positive = frame[label > 0]
    negative = frame[label < 1]
    rows = pd.concat([positive, negative], ignore_index=True)
    targets = np.concatenate([np.ones(len(positive), int), np.zeros(len(negative), int)])
    weights = np.concatenate([(label * row_weight)[label > 0], ((1 - label) * row_weight)[label < 1]])
    return rows, targets, weights


def population_weights(frame: pd.DataFrame, by: str, power: float) -> np.ndarray:
    """Each row's weight under ``weighting:`` (config.WeightingSpec): ``count ** -power`` of its (population,
    class) cell, mean 1. A row with no population (a copy, a pseudo-labelled test essay) takes its parent's
    through ``parent_id`` where it has one."""
    population = frame[by] if by in frame else pd.Series(np.nan, index=frame.index)
    if "parent_id" in frame:
        parents = dict(zip(frame["id"].astype(str), population, strict=True))
        population = population.fillna(frame["parent_id"].astype(str).map(parents))
    cell = population.fillna("").astype(str) + "|" + (frame["label"].to_numpy(dtype=float) >= 0.5).astype(str)
    counts = cell.map(cell.value_counts()).to_numpy(dtype=float)
    weights = counts**-power
    return weights / weights.mean()

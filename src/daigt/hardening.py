"""What a model config's ``augment:`` and ``deobfuscate:`` blocks mean for fold training and prediction.

``augment: {recipe: configs/augment/default.yaml, copies: 1}`` augments every training essay once per run
(deterministic per essay, so the same copies serve every fold); ``augment: {file: train_aug.csv}`` uses a file
made by ``python -m augment``. Either way a fold trains only on copies whose parent is in its training folds,
so no copy of a held-out essay leaks into training and OOF stays honest. ``augment: {each_epoch: recipe}``
gives families that train in epochs a fresh copy of every fit row each epoch (``FitContext.epoch_texts``).
``deobfuscate: {spelling: true}`` normalises (and spell-corrects) every text the model sees: training rows,
copies, held-out rows, test rows, and essays at predict time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from daigt.config import (
    AugmentSpec,
    DeobfuscateSpec,
    ModelConfig,
    fingerprint,
    frame_fingerprint,
    load_yaml,
    repo_path,
)
from daigt.data import binary_labels, canonical_frame, read_table
from daigt.deobfuscate import deobfuscate
from daigt.errors import DaigtError
from essayio import atomic

AUGMENTED_COLUMNS = ["id", "text", "label", "group", "source", "parent_id"]


def deobfuscate_texts(texts: pd.Series, spec: DeobfuscateSpec | None) -> pd.Series:
    if spec is None:
        return texts
    return texts.map(lambda t: deobfuscate(t, spelling=spec.spelling))


def _recipe(path: str) -> Any:
    from augment.errors import AugmentError
    from augment.recipe import Recipe

    try:
        return Recipe.load(repo_path(path))
    except AugmentError as err:
        raise DaigtError(str(err)) from None


ATTACK_CACHE_GLOB = "attacked-*.json"  # attacked training texts kept beside the folds (see ``attacked``)
ATTACKED = "attacked"  # the name of a scored set of attacked essays (a fold's held-out rows, a split's)


def attacked(frame: pd.DataFrame, recipe_path: str, cache_dir: Path | None = None) -> pd.DataFrame:
    """``frame`` with every text attacked by the recipe (one deterministic copy per essay, by id): what an
    obfuscating user would send. Used to score held-out essays under attack.

    With ``cache_dir`` the attacked texts are kept there (``ATTACK_CACHE_GLOB``) under a hash of the recipe,
    the ids and the texts: src/evaluate.py attacks the same training essays in every worker and again for the
    stacker (~18 s each on train.csv here). A cache file that does not read back as one text per essay is
    recomputed, never trusted."""
    from augment.pipeline import augment_frame

    path = None
    if cache_dir is not None:
        essays = frame_fingerprint(frame, ["id", "text"])
        key = fingerprint({"recipe": load_yaml(repo_path(recipe_path)), "essays": essays})
        path = Path(cache_dir) / ATTACK_CACHE_GLOB.replace("*", key)
        cached = _read_attack_cache(path, len(frame))
        if cached is not None:
            return frame.assign(text=cached)
    done = augment_frame(frame[["id", "text"]], _recipe(recipe_path), copies=1, progress=False)
    texts = done[done["copy"] == 1].set_index("parent_id")["text"].loc[frame["id"]].tolist()
    if path is not None:
        atomic.write_text(path, json.dumps(texts))
    return frame.assign(text=texts)


def _read_attack_cache(path: Path, rows: int) -> list[str] | None:
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(texts, list) or len(texts) != rows or not all(isinstance(t, str) for t in texts):
        return None
    return texts


@dataclass(frozen=True)
class Hardening:
    augment: AugmentSpec | None
    deobfuscate: DeobfuscateSpec | None

    @classmethod
    def from_model_config(cls, config: ModelConfig) -> Hardening:
        return cls(config.augment, config.deobfuscate)

    def key(self) -> dict[str, Any]:
        """What the run key must cover beyond the config: the content of every recipe it points at."""
        if self.augment is None:
            return {}
        paths = {"recipe": self.augment.recipe, "epoch_recipe": self.augment.each_epoch}
        return {name: load_yaml(repo_path(path)) for name, path in paths.items() if path}

    def clean(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.deobfuscate is None:
            return frame
        return frame.assign(text=self.clean_texts(frame["text"]))

    def clean_texts(self, texts: pd.Series) -> pd.Series:
        return deobfuscate_texts(texts, self.deobfuscate)

    def copies(self, train: pd.DataFrame, progress: bool = True) -> pd.DataFrame:
        """Augmented rows for every training essay, each with its ``parent_id`` (empty without copies)."""
        spec = self.augment
        if spec is None or not (spec.file or spec.recipe):
            return train.iloc[:0].assign(parent_id=pd.Series(dtype=str))
        if spec.file:
            rows = self._from_file(spec.file, train)
        else:
            from augment.pipeline import augment_frame

            done = augment_frame(train, _recipe(spec.recipe), spec.copies, spec.workers, progress=progress)
            rows = done[done["copy"] > 0].assign(id=lambda f: f["id"].astype(str))
            rows = rows[AUGMENTED_COLUMNS].reset_index(drop=True)
        if spec.classes != "both":
            ai = binary_labels(rows["label"]) == 1
            rows = rows[ai if spec.classes == "ai" else ~ai].reset_index(drop=True)
        return self.clean(rows)

    def epoch_texts(self) -> Callable[[pd.DataFrame, int], pd.Series] | None:
        """``augment.each_epoch``: epoch e trains on copy e + 1 of every fit row (deterministic per essay id),
        cleaned the way every other text is; None when the config asks for no per-epoch copies."""
        if self.augment is None or not self.augment.each_epoch:
            return None
        from augment.recipe import Augmenter

        augmenter = Augmenter(_recipe(self.augment.each_epoch))

        def texts(rows: pd.DataFrame, epoch: int) -> pd.Series:
            new, _ = augmenter.apply(rows["id"].astype(str).tolist(), rows["text"].tolist(), copy=epoch + 1)
            return self.clean_texts(pd.Series(new, index=rows.index))

        return texts

    def _from_file(self, file: str, train: pd.DataFrame) -> pd.DataFrame:
        path = repo_path(file)
        raw = read_table(path)
        if "parent_id" not in raw.columns:
            raise DaigtError(f"{path}: no parent_id column; make it with python -m augment")
        frame = canonical_frame(raw, path, "train").assign(parent_id=raw["parent_id"].astype(str).to_numpy())
        copies = frame[frame["id"] != frame["parent_id"]]
        copies = copies[~copies["id"].isin(train["id"])]
        unknown = ~copies["parent_id"].isin(train["id"])
        if unknown.any():
            raise DaigtError(
                f"{path}: {int(unknown.sum())} augmented rows have a parent_id that is not in the training data "
                f"(first: '{copies['parent_id'][unknown].iloc[0]}'); augment the same training file"
            )
        return copies.reset_index(drop=True)


def for_fold(copies: pd.DataFrame, fit_rows: pd.DataFrame) -> pd.DataFrame:
    """Fit rows plus the copies of exactly those rows: the fold-safety rule in one line."""
    return pd.concat([fit_rows, copies[copies["parent_id"].isin(fit_rows["id"])]], ignore_index=True)

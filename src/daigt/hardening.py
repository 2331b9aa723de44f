"""What a model config's ``augment:`` and ``deobfuscate:`` blocks mean for fold training and prediction.

``augment: {recipe: configs/augment/default.yaml, copies: 1}`` augments every training essay once per run
(deterministic per essay, so the same copies serve every fold); ``augment: {file: train_aug.csv}`` uses a file
made by ``python -m augment``. Either way a fold trains only on copies whose parent is in its training folds,
so no copy of a held-out essay leaks into training and OOF stays honest. ``deobfuscate: {spelling: true}``
normalises (and spell-corrects) every text the model sees: training rows, copies, held-out rows, test rows,
and essays at predict time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from daigt.config import load_yaml, repo_path
from daigt.data import canonical_frame, read_table
from daigt.errors import DaigtError


def deobfuscate_texts(texts: pd.Series, cfg: dict[str, Any] | None) -> pd.Series:
    if not cfg:
        return texts
    from augment.deobfuscate import deobfuscate

    spelling = bool(cfg.get("spelling", True))
    return texts.map(lambda t: deobfuscate(t, spelling=spelling))


@dataclass(frozen=True)
class Hardening:
    augment: dict[str, Any] | None
    deobfuscate: dict[str, Any] | None

    @classmethod
    def from_model_config(cls, config: dict[str, Any]) -> Hardening:
        augment = config.get("augment") or None
        if augment and not (augment.get("recipe") or augment.get("file")):
            raise DaigtError("augment: needs 'recipe:' (on the fly) or 'file:' (made by python -m augment)")
        return cls(augment, config.get("deobfuscate") or None)

    def key(self, params: dict[str, Any]) -> dict[str, Any]:
        """What the run key must cover beyond the config: the content of every recipe it points at
        (``augment.recipe`` here, ``params.augment_each_epoch`` in transformer families)."""
        paths = {
            "recipe": (self.augment or {}).get("recipe"),
            "epoch_recipe": params.get("augment_each_epoch"),
        }
        return {name: load_yaml(repo_path(path)) for name, path in paths.items() if path}

    def clean(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.deobfuscate:
            return frame
        return frame.assign(text=self.clean_texts(frame["text"]))

    def clean_texts(self, texts: pd.Series) -> pd.Series:
        return deobfuscate_texts(texts, self.deobfuscate)

    def copies(self, train: pd.DataFrame, progress: bool = True) -> pd.DataFrame:
        """Augmented rows for every training essay, each with its ``parent_id`` (empty without augment:)."""
        if not self.augment:
            return train.iloc[:0].assign(parent_id=pd.Series(dtype=str))
        if self.augment.get("file"):
            rows = self._from_file(train)
        else:
            from augment.pipeline import augment_frame
            from augment.recipe import Recipe

            recipe = Recipe.load(repo_path(self.augment["recipe"]))
            workers = int(self.augment.get("workers", 1))
            done = augment_frame(train, recipe, int(self.augment.get("copies", 1)), workers, progress=progress)
            rows = done[done["copy"] > 0].assign(id=lambda f: f["id"].astype(str))
            rows = rows[["id", "text", "label", "group", "source", "parent_id"]].reset_index(drop=True)
        return self.clean(rows)

    def _from_file(self, train: pd.DataFrame) -> pd.DataFrame:
        path = repo_path(self.augment["file"])
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

"""One persisted K-fold assignment (id -> fold) that every model reads, so OOF predictions stack; and the
locked holdout, a persisted share of the labelled essays that no model trains on and no choice is tuned on.

Both are stratified by (rounded) label, grouped by duplicate cluster (folds also by prompt on request), and
deterministic for a seed. They are written once; later runs verify the training data still matches and
refuse — never silently re-split — when it does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from daigt.config import fingerprint
from daigt.data import binary_labels
from daigt.dedup import SiblingConfig, connected_groups
from daigt.errors import DaigtError
from daigt.schema import Invalid
from essayio import atomic

REBUILD_HINT = (
    "rebuild with `python src/make_folds.py --force` (then retrain every model: OOF from different folds do not stack)"
)


@dataclass(frozen=True)
class FoldConfig:
    """``folds:`` in configs/project.yaml: the one K-fold assignment every model shares, persisted."""

    path: str = "folds/folds.csv"  # the one assignment every model shares
    n_folds: int = 5  # K of K-fold: every model's OOF comes from these folds
    seed: int = 42  # the draw of the folds (persisted in path: changing it re-draws them)
    group_by_prompt: bool = False  # true: a prompt never spans two folds (harder, more honest for new prompts)
    # AI rewrites of a human text kept with it (one fold, one side of the holdout); null: duplicates only
    siblings: SiblingConfig | None = None

    def check(self) -> None:
        if self.n_folds < 2:
            raise Invalid(f"must be >= 2, got {self.n_folds}", "n_folds")


@dataclass(frozen=True)
class HoldoutConfig:
    """``holdout:`` in configs/project.yaml. Reported beside OOF by blend, never used to choose anything."""

    fraction: float = 0.15  # about this share of essays (whole duplicate clusters); 0 turns the holdout off
    seed: int = 2024  # the draw of the holdout
    path: str = "folds/holdout.csv"  # the persisted holdout ids (never trained on)

    def check(self) -> None:
        if not 0 <= self.fraction <= 0.5:
            raise Invalid(f"must lie in [0, 0.5], got {self.fraction}", "fraction")


def draw_holdout(frame: pd.DataFrame, cfg: HoldoutConfig) -> pd.Series:
    """Ids of a stratified, duplicate-grouped share of ``frame``: one split of round(1 / fraction) folds.

    Drawn within each ``domain`` on its own, so adding a file of another domain to training leaves the holdout
    of the first one as it was (its figures stay comparable); a duplicate cluster spanning domains is held out
    whole when any of it is."""
    if cfg.fraction == 0:
        return pd.Series([], dtype=str)
    n_splits = max(2, round(1 / cfg.fraction))
    clusters = frame["dup_cluster"] if "dup_cluster" in frame else frame["id"]
    domains = frame["domain"].astype(str) if "domain" in frame else pd.Series("", index=frame.index)
    held = np.zeros(len(frame), dtype=bool)
    for domain in pd.unique(domains):
        member = (domains == domain).to_numpy()
        part = frame[member]
        groups = connected_groups(clusters[member])
        if len(np.unique(groups)) < n_splits:
            where = f" (domain '{domain}')" if domain else ""
            raise DaigtError(f"too few essays for a holdout of {cfg.fraction:.0%}{where}: set holdout.fraction: 0")
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=cfg.seed)
        _, chosen = next(splitter.split(np.zeros(len(part)), binary_labels(part["label"]), groups))
        held[np.flatnonzero(member)[chosen]] = True
    held |= clusters.isin(clusters[held]).to_numpy()
    return frame["id"][held].reset_index(drop=True)


def load_or_create_holdout(
    frame: pd.DataFrame, cfg: HoldoutConfig, path: Path, train_path: str | Path, force: bool = False
) -> np.ndarray:
    """Boolean mask of ``frame``'s holdout rows; drawn and persisted on first use, checked against the data after."""
    meta_path = path.with_suffix(".json")
    everything = ids_fingerprint(frame["id"])
    if force or not path.is_file():
        ids = draw_holdout(frame, cfg)
        meta = {"fraction": cfg.fraction, "seed": cfg.seed, "rows": len(ids), "all_ids_sha1": everything}
        atomic.write_json(meta_path, {**meta, "train": str(train_path)})
        atomic.write_csv(path, pd.DataFrame({"id": ids}))
    else:
        meta = _read_meta(meta_path)
        if meta.get("all_ids_sha1") != everything or (meta.get("fraction"), meta.get("seed")) != (
            cfg.fraction,
            cfg.seed,
        ):
            raise DaigtError(f"{path} was drawn for other training data or another holdout config; {REBUILD_HINT}")
        ids = _read_persisted(path, ["id"], may_be_empty=cfg.fraction == 0)["id"]
    return frame["id"].isin(set(ids)).to_numpy()


def assign_folds(frame: pd.DataFrame, cfg: FoldConfig) -> pd.DataFrame:
    """Draw folds for ``frame`` (needs id, label, and dup_cluster / group when used)."""
    y = binary_labels(frame["label"])
    keys = [frame["dup_cluster"]] if "dup_cluster" in frame else [frame["id"]]
    if cfg.group_by_prompt:
        keys.append(frame["group"])
    groups = connected_groups(*keys)
    n_groups = len(np.unique(groups))
    if cfg.n_folds < 2 or cfg.n_folds > n_groups:
        raise DaigtError(
            f"cannot draw {cfg.n_folds} folds from {n_groups} groups of essays: set folds.n_folds "
            "in configs/project.yaml between 2 and the number of groups"
        )
    splitter = StratifiedGroupKFold(n_splits=cfg.n_folds, shuffle=True, random_state=cfg.seed)
    fold = np.empty(len(frame), dtype=int)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(frame)), y, groups)):
        fold[held_out] = k
        if len(np.unique(y[held_out])) < 2:
            raise DaigtError(
                f"fold {k} holds a single class, so its AUC is undefined: use fewer folds, "
                "more data, or folds.group_by_prompt: false"
            )
    return pd.DataFrame({"id": frame["id"].to_numpy(), "fold": fold})


def ids_fingerprint(ids: pd.Series) -> str:
    return fingerprint(sorted(ids.tolist()))


def save_folds(folds: pd.DataFrame, cfg: FoldConfig, path: Path, train_path: str | Path) -> None:
    meta = {
        "n_folds": cfg.n_folds,
        "seed": cfg.seed,
        "group_by_prompt": cfg.group_by_prompt,
        "siblings": None if cfg.siblings is None else cfg.siblings.min_similarity,
        "rows": len(folds),
        "ids_sha1": ids_fingerprint(folds["id"]),
        "train": str(train_path),
    }
    atomic.write_json(path.with_suffix(".json"), meta)
    atomic.write_csv(path, folds)


def read_folds(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DaigtError(f"{path}: no folds file; create it with `python src/make_folds.py`")
    return _read_persisted(path, ["id", "fold"])


def _read_persisted(path: Path, columns: list[str], may_be_empty: bool = False) -> pd.DataFrame:
    """A folds / holdout file as written by this module; a truncated or edited one is one line with the fix."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if list(frame.columns) != columns or (frame.empty and not may_be_empty):
            raise ValueError(f"expected columns {','.join(columns)} and at least one row")
        if "fold" in frame:
            frame["fold"] = frame["fold"].astype(int)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DaigtError(f"{path}: damaged ({str(err).splitlines()[0]}); {REBUILD_HINT}") from None
    return frame


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text()) if path.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        meta = None
    if not isinstance(meta, dict):
        raise DaigtError(f"{path}: damaged (not a JSON object); {REBUILD_HINT}")
    return meta


def check_folds_match(folds: pd.DataFrame, frame: pd.DataFrame, path: Path, cfg: FoldConfig) -> None:
    """Refuse when the training ids changed since the folds were drawn."""
    have, want = set(folds["id"]), set(frame["id"])
    if have != want:
        added, removed = sorted(want - have), sorted(have - want)
        raise DaigtError(
            f"{path} does not match the training data: {len(added)} ids are new (e.g. {added[:3]}), "
            f"{len(removed)} are gone (e.g. {removed[:3]}); {REBUILD_HINT}"
        )
    n_folds = int(folds["fold"].max()) + 1
    if n_folds != cfg.n_folds:
        raise DaigtError(f"{path} has {n_folds} folds but folds.n_folds is {cfg.n_folds}; {REBUILD_HINT}")


def load_or_create_folds(
    frame: pd.DataFrame, cfg: FoldConfig, path: Path, train_path: str | Path, force: bool = False
) -> pd.DataFrame:
    """Return id/fold aligned with ``frame``'s rows; create and persist the file on first use."""
    if force or not path.is_file():
        folds = assign_folds(frame, cfg)
        save_folds(folds, cfg, path, train_path)
    else:
        folds = read_folds(path)
        check_folds_match(folds, frame, path, cfg)
    return frame[["id"]].merge(folds, on="id", how="left", validate="one_to_one")

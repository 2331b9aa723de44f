"""Read any supported essay file and turn it into the canonical frame every model sees.

Canonical columns: ``id`` (str), ``text`` (str), ``label`` (float in [0, 1]; NaN for test),
``group`` (prompt, str), ``source`` (str), ``domain`` (str; the file's name when several files train together).
Every problem is reported as file, row, column and fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from essayio.errors import DataError
from essayio.table import CANDIDATES, derive_ids, physical_line, read_table

CANONICAL = tuple(CANDIDATES)
MAPPING_FIX = "rename the column or map it under 'columns:' in configs/project.yaml"
# nothing to read: zero-width spaces and joiners, BOM, soft hyphen, and control characters such as NUL
INVISIBLE = "[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\x00-\x08\x0e-\x1f\x7f]"
PARENT_COLUMN = "parent_id"  # written by python -m augment: the essay a row is an augmented copy of
PROMPTS_FILE = "train_prompts.csv"  # Kaggle's: prompt_id -> prompt_name, beside train_essays.csv

Role = Literal["train", "test"]


def resolve_columns(frame: pd.DataFrame, mapping: Mapping[str, str], path: Path) -> dict[str, str | None]:
    """Canonical name -> column in ``frame``: explicit mapping first, then the usual names."""
    unknown = set(mapping) - set(CANONICAL)
    if unknown:
        raise DataError(path, f"unknown canonical names in 'columns:' {sorted(unknown)}", fix=f"use {CANONICAL}")
    resolved: dict[str, str | None] = {}
    for name in CANONICAL:
        if name in mapping:
            if mapping[name] not in frame.columns:
                raise DataError(
                    path,
                    f"column '{mapping[name]}' (mapped as {name}) is not in the file; it has {list(frame.columns)}",
                    fix=MAPPING_FIX,
                )
            resolved[name] = mapping[name]
        else:
            resolved[name] = next((c for c in CANDIDATES[name] if c in frame.columns), None)
    return resolved


def load_essays(
    path: str | Path,
    role: Role,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Load ``path`` as the canonical frame; train needs labels, test needs none."""
    path = Path(path)
    raw = read_table(path)
    frame = canonical_frame(raw, path, role, columns)
    if resolve_columns(raw, columns or {}, path)["group"] == "prompt_id":  # Kaggle's ids: named where known
        names = prompt_names(path.parent / PROMPTS_FILE)
        frame["group"] = frame["group"].map(lambda group: names.get(group, group))
    if role == "train" and PARENT_COLUMN in raw.columns:  # rows made by python -m augment: copies of a parent
        parents = raw[PARENT_COLUMN].astype("string").fillna("").str.strip().to_numpy(dtype=object)
        frame[PARENT_COLUMN] = np.where(parents == "", frame["id"].to_numpy(dtype=object), parents)
    return frame


def prompt_names(path: Path) -> dict[str, str]:
    """prompt_id -> prompt_name from Kaggle's ``train_prompts.csv`` ({} when there is none), so reports name
    the prompts ("Car-free cities") instead of numbering them."""
    if not path.is_file():
        return {}
    prompts = read_table(path)
    missing = [c for c in ("prompt_id", "prompt_name") if c not in prompts.columns]
    if missing:
        raise DataError(path, f"no {' or '.join(missing)} column; it has {list(prompts.columns)}",
                        fix="give it Kaggle's prompt_id,prompt_name columns, or move it away")  # fmt: skip
    ids = prompts["prompt_id"].astype("string").str.strip()
    return dict(zip(ids, prompts["prompt_name"].astype("string").str.strip(), strict=True))


def canonical_frame(
    raw: pd.DataFrame, path: Path, role: Role, columns: Mapping[str, str] | None = None, first_row: int = 1
) -> pd.DataFrame:
    """Map ``raw`` (one file, or one chunk of it starting at data row ``first_row``) to the canonical columns."""
    cols = resolve_columns(raw, columns or {}, path)
    if cols["text"] is None:
        raise DataError(
            path, f"no text column (looked for {CANDIDATES['text']}; found {list(raw.columns)})", fix=MAPPING_FIX
        )
    if role == "train" and cols["label"] is None:
        raise DataError(
            path, f"no label column (looked for {CANDIDATES['label']}; found {list(raw.columns)})", fix=MAPPING_FIX
        )
    raw = raw.reset_index(drop=True)
    at = _Located(path, first_row)
    text = _texts(raw[cols["text"]], at, cols["text"])
    frame = pd.DataFrame(
        {
            "id": _ids(raw, cols["id"], text, at, role),
            "text": text,
            "label": _labels(raw[cols["label"]], at, cols["label"]) if role == "train" else np.nan,
            "group": _strings(raw, cols["group"]),
            "source": _strings(raw, cols["source"]),
            "domain": _strings(raw, cols["domain"]),
        }
    )
    return frame


def training_labels(raw: pd.DataFrame, path: str | Path, columns: Mapping[str, str] | None = None) -> pd.Series | None:
    """The label column of ``raw`` checked as training labels are, or None when it has none."""
    column = resolve_columns(raw, columns or {}, Path(path))["label"]
    return None if column is None else _labels(raw[column], _Located(Path(path)), column)


class _Located:
    """A file and the data-row number of its first row here (chunks of a stream start further down)."""

    def __init__(self, path: Path, first_row: int = 1) -> None:
        self.path, self.first_row = path, first_row

    def rows(self, mask: np.ndarray) -> list[int]:
        """Data-row numbers (header not counted, 1-based) where ``mask`` is true."""
        return [int(i) + self.first_row for i in np.flatnonzero(mask)]


def _first_bad(at: _Located, column: str, mask: np.ndarray, problem: str, fix: str) -> None:
    rows = at.rows(mask)
    if rows:
        more = f" ({len(rows)} rows in all: {rows[:5]}{'…' if len(rows) > 5 else ''})" if len(rows) > 1 else ""
        line = physical_line(at.path, rows[0])
        raise DataError(at.path, problem + more, row=rows[0], column=column, fix=fix, line=line)


def blank_texts(texts: pd.Series) -> np.ndarray:
    """Which texts hold nothing to read (only whitespace, invisible or control characters): the one rule of the
    CLI's reader and the HTTP service."""
    return texts.astype(str).str.replace(INVISIBLE, "", regex=True).str.strip().eq("").to_numpy()


def _texts(values: pd.Series, at: _Located, column: str) -> pd.Series:
    as_str = values.astype(object)
    missing = as_str.isna().to_numpy() | ~as_str.map(lambda v: isinstance(v, str)).to_numpy()
    _first_bad(at, column, missing, "text is missing or not a string", "fill it in or remove the row")
    # invisible characters (zero-width space/joiners, BOM, soft hyphen) do not make an essay
    empty = blank_texts(as_str)
    _first_bad(at, column, empty, "text is empty (or only invisible characters)", "fill it in or remove the row")
    return as_str.astype(str)


def _labels(values: pd.Series, at: _Located, column: str) -> pd.Series:
    numeric = pd.to_numeric(values.astype(object).where(values.astype(str).str.strip() != ""), errors="coerce")
    bad = numeric.isna().to_numpy()
    if bad.any():
        first = values.iloc[int(np.flatnonzero(bad)[0])]
        _first_bad(
            at,
            column,
            bad,
            f"label {first!r} is not a number",
            "labels are probabilities of 'AI-generated': 0, 1 or soft values in [0, 1]",
        )
    outside = ((numeric < 0) | (numeric > 1)).to_numpy()
    if outside.any():
        first = numeric.iloc[int(np.flatnonzero(outside)[0])]
        _first_bad(at, column, outside, f"label {first} is outside [0, 1]", "rescale it: 1 = AI-generated, 0 = human")
    return numeric.astype(float)


def _ids(raw: pd.DataFrame, column: str | None, text: pd.Series, at: _Located, role: Role) -> pd.Series:
    if column is None:
        return derive_ids(text)
    ids = raw[column].astype(object)
    blank = ids.isna().to_numpy() | ids.astype(str).str.strip().eq("").to_numpy()
    _first_bad(at, column, blank, "id is empty", "give every row an id, or drop the id column to derive ids")
    ids = ids.astype(str).str.strip()
    repeated = ids.duplicated(keep=False).to_numpy()
    if repeated.any():
        first_id = ids[repeated].iloc[0]
        rows = at.rows((ids == first_id).to_numpy())
        what = "test ids repeat" if role == "test" else "duplicate id"
        fix = (
            "Kaggle scores exactly one row per id: remove the repeated rows"
            if role == "test"
            else "ids must be unique: drop or rename the repeated rows"
        )
        raise DataError(
            at.path,
            f"{what}: '{first_id}' at rows {rows} ({int(repeated.sum())} rows share an id)",
            row=rows[0],
            column=column,
            fix=fix,
        )
    return ids


def _strings(raw: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None:
        return pd.Series([""] * len(raw), dtype=str)
    return raw[column].astype(object).fillna("").astype(str)


def binary_labels(labels: pd.Series | np.ndarray) -> np.ndarray:
    """Soft labels rounded for metrics and stratification: AUC needs two classes."""
    return (np.asarray(labels, dtype=float) >= 0.5).astype(int)

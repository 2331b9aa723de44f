"""A submission Kaggle accepts: ``id,generated``, every test id once in test order, floats in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from daigt.errors import DaigtError
from essayio import atomic

COLUMNS = ["id", "generated"]
SAMPLE_NAME = "sample_submission.csv"


def sample_beside(test_path: Path) -> Path | None:
    """Kaggle's sample_submission.csv next to the test file, when it is there (the competition's layout)."""
    beside = test_path.parent / SAMPLE_NAME
    return beside if beside.is_file() else None


def build_submission(ids: pd.Series, probabilities: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"id": ids.to_numpy(), COLUMNS[1]: np.clip(probabilities, 0.0, 1.0)})


def write_submission(path: Path, ids: pd.Series, probabilities: np.ndarray, sample_path: Path | None) -> None:
    """Validate, then write in one rename: a submission that fails a check is never on disk."""
    submission = build_submission(ids, probabilities)
    validate_submission(submission, ids, sample_path)
    atomic.write_csv(path, submission)


def validate_submission(sub: pd.DataFrame, test_ids: pd.Series, sample_path: Path | None = None) -> None:
    """Raise DaigtError on the first problem; returns quietly when the file is ready to upload."""
    if list(sub.columns) != COLUMNS:
        raise DaigtError(f"submission columns are {list(sub.columns)}, expected {COLUMNS}")
    if len(sub) != len(test_ids) or not (sub["id"].astype(str).to_numpy() == test_ids.astype(str).to_numpy()).all():
        raise DaigtError(
            "submission ids differ from the test ids (count or order): retrain so that every "
            "model predicted the same test file"
        )
    values = pd.to_numeric(sub["generated"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(values).any():
        raise DaigtError(f"submission has {int(np.isnan(values).sum())} NaN predictions")
    if (values < 0).any() or (values > 1).any():
        raise DaigtError("submission predictions must lie in [0, 1]")
    if sample_path is not None:
        sample = pd.read_csv(sample_path, dtype={"id": str})
        if list(sample.columns) != COLUMNS:
            raise DaigtError(f"{sample_path}: sample submission columns are {list(sample.columns)}, expected {COLUMNS}")
        missing = set(sample["id"]) - set(sub["id"].astype(str))
        extra = set(sub["id"].astype(str)) - set(sample["id"])
        if missing or extra:
            raise DaigtError(
                f"submission ids do not match {sample_path}: {len(missing)} missing "
                f"(e.g. {sorted(missing)[:3]}), {len(extra)} extra (e.g. {sorted(extra)[:3]}) — "
                "predict the test file that goes with this sample submission"
            )

"""From the picked candidate's score to a probability that means one: Platt scaling on OOF scores.

A rank mean is a score, not a probability (on the training essays it read "100 % AI" from 0.45 up). A
logistic curve in the score's logit, fitted on the OOF scores, makes ``probability`` a probability on the
training population. It is strictly increasing, so ranking and AUC are untouched (isotonic regression would
tie scores and change AUC). Fold-safe: ``cross_fitted`` scores each fold with a curve fitted on the others,
which is how its calibration error is reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from daigt.data import binary_labels
from daigt.errors import DaigtError

EPS = 1e-6  # scores are clipped to [EPS, 1 - EPS] before the logit
MIN_SLOPE = 1e-6  # a score that ranks backwards gets the flattest increasing curve: about the base rate
N_BINS = 10  # equal-width bins of the expected calibration error


def _logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=float), EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    """probability = sigmoid(slope * logit(score) + intercept), slope > 0."""

    slope: float
    intercept: float

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.slope * _logit(scores) + self.intercept)))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(float(data["slope"]), float(data["intercept"]))


def fit_platt(labels: np.ndarray, scores: np.ndarray) -> Calibration:
    y = binary_labels(labels)
    if len(np.unique(y)) < 2:
        raise DaigtError("calibration needs essays of both classes among the OOF rows")
    model = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(scores)[:, None], y)
    slope = float(model.coef_[0, 0])
    if slope < MIN_SLOPE:  # AI essays score lower than human ones: the score says nothing a curve could keep
        base = float(np.clip(y.mean(), EPS, 1 - EPS))
        return Calibration(MIN_SLOPE, float(np.log(base / (1 - base))))
    return Calibration(slope, float(model.intercept_[0]))


def cross_fitted(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold's probabilities from a curve fitted on the other folds (no row calibrates itself)."""
    scores, folds = np.asarray(scores, dtype=float), np.asarray(folds)
    out = np.zeros(len(scores))
    for k in np.unique(folds):
        held = folds == k
        out[held] = fit_platt(np.asarray(labels)[~held], scores[~held])(scores[held])
    return out


def calibration_error(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Expected calibration error (|mean predicted - observed| per equal-width bin, weighted) and Brier score."""
    y, p = binary_labels(labels).astype(float), np.clip(np.asarray(probabilities, dtype=float), 0, 1)
    bins = np.minimum((p * N_BINS).astype(int), N_BINS - 1)
    ece = sum(abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins))
    return {"ece": float(ece), "brier": float(np.mean((p - y) ** 2))}

"""Metrics on soft labels: ROC-AUC needs two classes, so labels are rounded at 0.5."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from daigt.data import binary_labels


def auc(labels: pd.Series | np.ndarray, preds: pd.Series | np.ndarray) -> float:
    y = binary_labels(labels)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, np.asarray(preds, dtype=float)))


FPR_POINTS = (0.01, 0.001)  # the false-positive rates TPR is reported at beside AUC (1 % and 0.1 %)


def fpr_cut(human: np.ndarray, cuts: np.ndarray, target_fpr: float) -> float:
    """The lowest of the increasing ``cuts`` that flags at most ``target_fpr`` of the sorted ``human`` scores
    (the last cut must flag nobody)."""
    flagged = len(human) - np.searchsorted(human, cuts, side="left")
    return float(cuts[np.argmax(flagged / len(human) <= target_fpr)])


def tpr_at_fpr(labels: pd.Series | np.ndarray, preds: pd.Series | np.ndarray, target_fpr: float) -> float:
    """Share of AI texts caught at the cut that flags at most ``target_fpr`` of these texts' own humans: what
    a detector catches when false accusations must stay rare (NaN without both classes)."""
    y, preds = binary_labels(labels), np.asarray(preds, dtype=float)
    if len(np.unique(y)) < 2:
        return float("nan")
    cuts = np.append(np.unique(preds), np.inf)
    return float((preds[y == 1] >= fpr_cut(np.sort(preds[y == 0]), cuts, target_fpr)).mean())


def tpr_points(labels: pd.Series | np.ndarray, preds: pd.Series | np.ndarray) -> dict[str, float]:
    """``tpr_at_fpr`` at each of ``FPR_POINTS``, keyed by the rate ("0.01", "0.001")."""
    return {str(fpr): tpr_at_fpr(labels, preds, fpr) for fpr in FPR_POINTS}


def per_group_auc(labels: np.ndarray, preds: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """AUC per group (e.g. source). A single-class group is scored against every row of the other class,
    which answers 'how well are this source's essays told apart from the other side'."""
    y = binary_labels(labels)
    preds, groups = np.asarray(preds, dtype=float), np.asarray(groups)
    scores = {}
    for group in sorted(set(groups.tolist())):
        members = groups == group
        classes = np.unique(y[members])
        mask = members if len(classes) == 2 else members | (y != classes[0])
        scores[str(group)] = auc(y[mask], preds[mask])
    return scores


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and finished children) so far, in MiB."""
    bytes_per_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * bytes_per_unit / 2**20

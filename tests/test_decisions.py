"""Thresholds chosen on one sample hold on another; the UNKNOWN band and coverage report count right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from daigt.decisions import (
    AI,
    HUMAN,
    UNKNOWN,
    DecisionConfig,
    Thresholds,
    accuracy_threshold,
    choose_thresholds,
    coverage_report,
    decide,
    fnr_threshold,
    fpr_threshold,
)
from daigt.errors import DaigtError
from daigt.schema import parse


def scores(n_human: int, n_ai: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping beta-distributed scores: humans low, AI high."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_human), np.ones(n_ai)]
    return labels, np.r_[rng.beta(2, 5, n_human), rng.beta(5, 2, n_ai)]


@pytest.mark.parametrize("target", [0.01, 0.05])
def test_fpr_threshold_holds_its_target_on_held_out_scores(target: float) -> None:
    labels, fit = scores(20_000, 20_000, seed=0)
    cut = fpr_threshold(labels, fit, target)
    assert np.mean(fit[labels == 0] >= cut) <= target  # exact on the sample it was chosen on
    held_labels, held = scores(20_000, 20_000, seed=1)
    assert abs(np.mean(held[held_labels == 0] >= cut) - target) < 0.25 * target + 0.002


def test_fnr_and_accuracy_thresholds() -> None:
    labels, fit = scores(5_000, 5_000, seed=2)
    low = fnr_threshold(labels, fit, 0.05)
    assert np.mean(fit[labels == 1] < low) <= 0.05
    assert np.mean(fit[labels == 1] < np.nextafter(low, 2)) > 0.05 - 1e-3  # the highest such cut
    best = accuracy_threshold(labels, fit)
    accuracy = lambda t: np.mean((fit >= t) == labels)  # noqa: E731
    assert all(accuracy(best) >= accuracy(t) for t in np.linspace(0, 1, 101))
    assert abs(best - 0.5) < 0.05  # symmetric classes: the cut sits in the middle


def test_band_decisions_and_coverage_report_counts() -> None:
    t = Thresholds(low=0.3, high=0.8, rule="target_fpr", target_fpr=0.01, target_fnr=0.05)
    probs = np.array([0.1, 0.3, 0.5, 0.79, 0.8, 0.95])
    labels = np.array([0, 0, 1, 0, 1, 1])
    decisions = decide(probs, t)
    assert decisions.tolist() == [HUMAN, UNKNOWN, UNKNOWN, UNKNOWN, AI, AI]
    report = coverage_report(labels, decisions)
    assert report["counts"] == {AI: 2, HUMAN: 1, UNKNOWN: 3}
    assert report["proportions"][UNKNOWN] == pytest.approx(0.5) and report["coverage"] == pytest.approx(0.5)
    assert report["accuracy_on_decided"] == 1.0
    assert report["accuracy_unknown_as_wrong"] == pytest.approx(0.5)
    assert report["classification_report"]["ai"]["support"] == 2
    assert report["confusion_matrix"]["matrix"] == [[1, 0], [0, 2]]


def test_choose_thresholds_band_and_rules() -> None:
    labels, fit = scores(2_000, 2_000, seed=3)
    banded = choose_thresholds(labels, fit, DecisionConfig(target_fpr=0.01, unknown_band=True, target_fnr=0.05))
    assert banded.low < banded.high
    plain = choose_thresholds(labels, fit, DecisionConfig(threshold="best_accuracy"))
    assert plain.low == plain.high and set(decide(fit, plain)) == {AI, HUMAN}
    with pytest.raises(DaigtError, match="threshold: 'vibes' is not one of"):
        parse(DecisionConfig, {"threshold": "vibes"}, "blend.yaml", "decisions")
    with pytest.raises(DaigtError, match="no human essays"):
        fpr_threshold(np.ones(4), fit[:4], 0.01)


def test_too_short_essays_are_unknown_whatever_their_score() -> None:
    from daigt.decisions import AI, UNKNOWN, Thresholds, decide

    cuts = Thresholds(low=0.3, high=0.9, rule="target_fpr", target_fpr=0.01, target_fnr=0.05, min_words=50)
    long_essay = "word " * 60
    decisions = decide(np.array([0.98, 0.98]), cuts, ["Aaa bbb ccc.", long_essay])
    assert decisions.tolist() == [UNKNOWN, AI]
    assert decide(np.array([0.98]), cuts).tolist() == [AI]  # without texts, the scores alone decide


def test_pergroup_auc_tables_sort_numbered_prompts_numerically() -> None:
    from daigt.analysis import group_auc_table

    groups = pd.Series(["prompt 10", "prompt 2", "prompt 1", "Car-free cities", "prompt 2", "prompt 10"])
    labels = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    table = group_auc_table(labels, np.linspace(0, 1, 6), groups)
    assert list(table) == ["Car-free cities", "prompt 1", "prompt 2", "prompt 10"]
    assert table["prompt 10"]["n"] == 2

"""Trust beyond the training essays: the shift score, abstention with reasons, calibration, per-group tables."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daigt.calibration import calibration_error, cross_fitted, fit_platt
from daigt.decisions import (
    AI,
    EDGE_OF_DOMAIN,
    HUMAN,
    OUT_OF_DOMAIN,
    SCORE,
    TOO_SHORT,
    UNCERTAIN,
    UNKNOWN,
    DecisionConfig,
    Thresholds,
    choose_thresholds,
    decide_with_reasons,
)
from daigt.metrics import auc
from daigt.shift import ShiftConfig, ShiftScorer, adversarial_auc
from daigt.trust import ALL, NO_GROUP, decision_table, table_markdown

TOPICS = {
    "cars": [
        "car",
        "cars",
        "driving",
        "traffic",
        "pollution",
        "city",
        "cities",
        "streets",
        "transport",
        "vehicles",
        "limiting",
        "usage",
        "smog",
    ],
    "venus": [
        "venus",
        "planet",
        "surface",
        "spacecraft",
        "scientists",
        "exploring",
        "atmosphere",
        "temperature",
        "nasa",
        "orbit",
    ],
    "college": [
        "electoral",
        "college",
        "president",
        "votes",
        "popular",
        "election",
        "states",
        "electors",
        "candidates",
    ],
}
OTHER = {
    "recipes": ["flour", "butter", "oven", "bake", "dough", "sugar", "recipe", "minutes", "whisk", "pan", "cinnamon"],
    "football": ["goal", "striker", "league", "match", "referee", "penalty", "season", "coach", "midfield", "stadium"],
}
STYLE = {
    0: ["honestly", "think", "really", "kinda", "stuff", "because"],
    1: ["furthermore", "additionally", "crucial", "overall"],
}


def corpus(topics: dict[str, list[str]], n: int, seed: int) -> pd.DataFrame:
    """Essays on ``topics``: content words of their topic plus a few class-typical style words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = list(topics)[i % len(topics)]
        label = i % 2
        words = [rng.choice(topics[topic]) for _ in range(rng.randint(60, 90))]
        words += [rng.choice(STYLE[label]) for _ in range(10)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": float(label), "fold": i % 5, "topic": topic})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def scorer_and_train() -> tuple[ShiftScorer, pd.DataFrame]:
    train = corpus(TOPICS, 300, seed=0)
    cfg = ShiftConfig(min_df=2, max_df=1.0, neighbours=5)
    return ShiftScorer.fit(train["text"], train["label"].to_numpy(), train["fold"].to_numpy(), cfg), train


def test_shift_flags_another_domain_and_not_the_training_population(scorer_and_train) -> None:
    scorer, _ = scorer_and_train
    same = scorer.in_domain(corpus(TOPICS, 200, seed=1)["text"])
    other = scorer.in_domain(corpus(OTHER, 200, seed=2)["text"])
    assert np.mean(same < 0.03) < 0.1  # about the configured share of the training population, held out
    assert np.mean(other < 0.03) == 1.0
    assert ((same >= 0) & (same <= 1)).all() and ((other >= 0) & (other <= 1)).all()


def test_shift_calibration_flags_the_configured_share_out_of_fold(scorer_and_train) -> None:
    scorer, _ = scorer_and_train
    for share in (0.03, 0.1, 0.3):  # measured on each essay scored by a fit without its fold
        assert abs(np.mean(scorer.oof_in_domain < share) - share) <= 0.02


def test_shift_scorer_survives_its_arrays(scorer_and_train) -> None:
    scorer, _ = scorer_and_train
    texts = pd.concat([corpus(TOPICS, 20, seed=3)["text"], corpus(OTHER, 20, seed=4)["text"]])
    again = ShiftScorer.from_arrays(scorer.to_arrays(), scorer.space.cfg)
    np.testing.assert_array_equal(again.in_domain(texts), scorer.in_domain(texts))


def test_the_cached_scorer_is_the_fitted_one_and_a_damaged_cache_is_refitted(tmp_path: Path) -> None:
    train = corpus(TOPICS, 200, seed=0)
    cfg = ShiftConfig(min_df=2, max_df=1.0, neighbours=5)
    args = (train["text"], train["label"].to_numpy(), train["fold"].to_numpy(), cfg, tmp_path)
    fitted = ShiftScorer.fit_cached(*args)
    (cached,) = tmp_path.glob("shift-scorer-*.npz")
    read = ShiftScorer.fit_cached(*args)
    texts = corpus(OTHER, 20, seed=4)["text"]
    np.testing.assert_array_equal(read.in_domain(texts), fitted.in_domain(texts))
    np.testing.assert_array_equal(read.oof_in_domain, fitted.oof_in_domain)
    assert (read.rows_of_training(train["text"]) != fitted.space.transform(train["text"].tolist())).nnz == 0
    cached.write_bytes(b"not a zip")
    np.testing.assert_array_equal(ShiftScorer.fit_cached(*args).in_domain(texts), fitted.in_domain(texts))
    other_cfg = ShiftConfig(min_df=3, max_df=1.0, neighbours=5)  # another config: another scorer, not this one
    ShiftScorer.fit_cached(*args[:3], other_cfg, tmp_path)
    assert len(list(tmp_path.glob("shift-scorer-*.npz"))) == 2


def test_adversarial_validation_flags_a_shifted_test_and_not_a_same_distribution_one(scorer_and_train) -> None:
    scorer, train = scorer_and_train
    rows = lambda frame: scorer.space.transform(frame["text"].tolist())  # noqa: E731
    assert (scorer.rows_of_training(train["text"]) != rows(train)).nnz == 0  # kept from the fit: the same rows
    same = adversarial_auc(rows(train), rows(corpus(TOPICS, 100, seed=5)))
    shifted = adversarial_auc(rows(train), rows(corpus(OTHER, 100, seed=6)))
    assert same is not None and shifted is not None
    assert same < 0.7 and shifted > 0.95
    assert adversarial_auc(rows(train), rows(train.head(3))) is None  # too few to tell


THRESHOLDS = Thresholds(
    low=0.3, high=0.6, rule="target_fpr", target_fpr=0.01, target_fnr=0.05, min_words=3,
    out_of_domain_below=0.05, edge_below=0.2, edge_high=0.9,
)  # fmt: skip


def test_an_out_of_domain_essay_is_never_ai_and_every_decision_has_its_reason() -> None:
    rng = np.random.default_rng(0)
    scores, in_domain = rng.random(2000), rng.random(2000)
    texts = ["a b c d e"] * 2000
    decisions, reasons = decide_with_reasons(scores, THRESHOLDS, texts, in_domain)
    out = in_domain < 0.05
    assert out.any() and (decisions[out] == UNKNOWN).all() and (reasons[out] == OUT_OF_DOMAIN).all()
    assert (decisions[in_domain < 0.2] != AI).sum() >= (scores[(in_domain < 0.2)] < 0.9).sum()
    edge = (in_domain >= 0.05) & (in_domain < 0.2) & (scores >= 0.6) & (scores < 0.9)
    assert edge.any() and (reasons[edge] == EDGE_OF_DOMAIN).all() and (decisions[edge] == UNKNOWN).all()
    inside = in_domain >= 0.2
    expected = np.where(scores >= 0.6, AI, np.where(scores < 0.3, HUMAN, UNKNOWN))
    assert (decisions[inside] == expected[inside]).all()
    assert (reasons[inside] == np.where(expected[inside] == UNKNOWN, UNCERTAIN, SCORE)).all()


def test_too_short_wins_over_every_other_reason() -> None:
    decisions, reasons = decide_with_reasons(np.array([0.99, 0.99]), THRESHOLDS, ["too short", "a b c d"], [0.0, 0.9])
    assert reasons.tolist() == [TOO_SHORT, SCORE] and decisions.tolist() == [UNKNOWN, AI]


def test_edge_cut_is_stricter_than_the_main_cut() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(3000) < 0.5).astype(float)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.12), 0, 1)
    t = choose_thresholds(labels, scores, DecisionConfig(unknown_band=True, edge_target_fpr=0.001))
    assert t.edge_high is not None and t.edge_high > t.high
    assert np.mean(scores[labels == 0] >= t.edge_high) <= 0.001


def test_calibration_keeps_the_ranking_and_is_fold_safe() -> None:
    rng = np.random.default_rng(2)
    labels = (rng.random(1000) < 0.6).astype(float)
    scores = np.clip(rng.normal(0.3 + 0.2 * labels, 0.1), 0, 1)  # a rank-mean-like score, badly calibrated
    folds = np.arange(1000) % 5
    calibration = fit_platt(labels, scores)
    probability = calibration(scores)
    assert auc(labels, probability) == pytest.approx(auc(labels, scores), abs=1e-12)
    assert (np.diff(probability[np.argsort(scores)]) >= 0).all()
    crossed = cross_fitted(labels, scores, folds)
    assert calibration_error(labels, crossed)["ece"] < calibration_error(labels, scores)["ece"]
    # fold-safe: a fold's probabilities do not move when its own labels are flipped
    flipped = labels.copy()
    flipped[folds == 0] = 1 - flipped[folds == 0]
    np.testing.assert_allclose(cross_fitted(flipped, scores, folds)[folds == 0], crossed[folds == 0])


def test_a_backwards_score_gets_a_flat_increasing_calibration_not_an_error() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(500) < 0.3).astype(float)
    scores = np.clip(rng.normal(0.6 - 0.2 * labels, 0.1), 0, 1)  # AI essays score lower: a useless model
    probability = fit_platt(labels, scores)(scores)
    assert np.allclose(probability, labels.mean(), atol=1e-3)  # the base rate: all the score can say
    assert auc(labels, probability) == pytest.approx(auc(labels, scores), abs=1e-12)  # still the same order


def test_decision_table_counts_per_group_with_and_without_labels() -> None:
    decisions = np.array([AI, HUMAN, AI, UNKNOWN, AI, UNKNOWN])
    reasons = np.array([SCORE, SCORE, SCORE, OUT_OF_DOMAIN, SCORE, UNCERTAIN])
    labels = np.array([0, 0, 1, 1, 1, 0], dtype=float)
    groups = np.array(["a", "a", "a", "b", "", "b"])
    table = decision_table(decisions, reasons, labels, groups)
    assert table[ALL]["humans_decided_ai"] == pytest.approx(1 / 3)
    assert table[ALL]["ai_decided_ai"] == pytest.approx(2 / 3)
    assert table["a"]["humans_decided_ai"] == 0.5 and table["b"]["abstained"] == 1.0
    assert table[NO_GROUP]["n"] == 1  # an empty group gets a name, never a blank row
    assert table["b"]["reasons"][OUT_OF_DOMAIN] == 1
    assert table[ALL]["humans_decided_human"] == pytest.approx(1 / 3) and table[ALL]["ai_decided_human"] == 0.0
    assert "| AI decided human |" in table_markdown(table)
    unlabelled = decision_table(decisions, reasons, None, groups)
    assert "humans_decided_ai" not in unlabelled[ALL] and unlabelled[ALL]["decided_ai"] == 0.5
    assert unlabelled[ALL]["decided_human"] == pytest.approx(1 / 6)
    assert "| (none) | 1 |" in table_markdown(table)

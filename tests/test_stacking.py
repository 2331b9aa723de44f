"""The nested stacker: fold boosters score any rows by feature name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daigt.errors import DaigtError
from daigt.stacking import StackerConfig, nested_stacker, stacker_predict


@pytest.fixture
def stacked() -> tuple[pd.DataFrame, list]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300).astype(float)
    x = pd.DataFrame({"p_a": labels * 0.6 + rng.random(300) * 0.5, "p_b": rng.random(300), "meta_len": rng.random(300)})
    folds = np.arange(300) % 3
    params = StackerConfig(n_estimators=30, num_leaves=4, min_child_samples=5, n_jobs=1, seed=1)
    oof, boosters = nested_stacker(x, labels, folds, params)
    assert np.corrcoef(oof, labels)[0, 1] > 0.5  # it learned from p_a
    return x, boosters


def test_columns_are_matched_by_name_not_position(stacked: tuple[pd.DataFrame, list]) -> None:
    x, boosters = stacked
    shuffled = x[["meta_len", "p_b", "p_a"]]
    np.testing.assert_array_equal(stacker_predict(boosters, shuffled), stacker_predict(boosters, x))
    assert not np.allclose(
        stacker_predict(boosters, x), stacker_predict(boosters, shuffled.set_axis(x.columns, axis=1))
    )


def test_a_missing_feature_is_a_clear_error(stacked: tuple[pd.DataFrame, list]) -> None:
    x, boosters = stacked
    with pytest.raises(DaigtError, match="meta_len"):
        stacker_predict(boosters, x.drop(columns=["meta_len"]))


def test_the_cached_stacker_is_the_fitted_one_and_refits_when_its_input_changes(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200).astype(float)
    x = pd.DataFrame({"p_a": labels * 0.6 + rng.random(200) * 0.5, "p_b": rng.random(200)})
    folds, cfg = np.arange(200) % 3, StackerConfig(n_estimators=20, num_leaves=4, min_child_samples=5, n_jobs=1)
    fitted_oof, fitted = nested_stacker(x, labels, folds, cfg, tmp_path)
    (cache,) = tmp_path.glob("stacker-*.json")
    read_oof, read = nested_stacker(x, labels, folds, cfg, tmp_path)
    np.testing.assert_array_equal(read_oof, fitted_oof)
    np.testing.assert_array_equal(stacker_predict(read, x), stacker_predict(fitted, x))
    nudged = x.assign(p_b=x["p_b"].where(x.index != 7, 0.5))  # one feature value: another stacker
    nested_stacker(nudged, labels, folds, cfg, tmp_path)
    nested_stacker(x, labels, folds, StackerConfig(n_estimators=21, num_leaves=4, min_child_samples=5), tmp_path)
    assert len(list(tmp_path.glob("stacker-*.json"))) == 3
    cache.write_text("{broken")  # unreadable: refitted, the same stacker
    np.testing.assert_array_equal(nested_stacker(x, labels, folds, cfg, tmp_path)[0], fitted_oof)


def test_auto_pick_prefers_held_out_sources_among_candidates_above_the_oof_floor() -> None:
    from daigt.stacking import Candidate, pick_candidate

    def cand(name: str, oof_auc: float) -> Candidate:
        return Candidate(name, np.zeros(1), {}, oof_auc)

    candidates = {"a": cand("a", 0.97), "b": cand("b", 0.99), "stacker": cand("stacker", 0.986)}
    summary = {"loso": {"a": {"mean": 0.96, "min": 0.7}, "b": {"mean": 0.94, "min": 0.6},
                        "stacker": {"mean": 0.95, "min": 0.74}}}  # fmt: skip
    assert pick_candidate(candidates, "auto", {"summary": summary}).name == "a"  # no floor: best held-out mean
    assert pick_candidate(candidates, "auto", {"summary": summary}, min_oof_auc=0.985).name == "stacker"
    assert pick_candidate(candidates, "auto", None, min_oof_auc=0.985).name == "b"  # no figures: best OOF
    assert pick_candidate(candidates, "auto", None, fallback="a").name == "a"  # no figures: the named fallback
    assert pick_candidate(candidates, "auto", None, fallback="rank_mean").name == "b"  # not a candidate here
    with pytest.raises(DaigtError, match="pick_fallback: 'rank_maen'"):
        pick_candidate(candidates, "auto", None, fallback="rank_maen")
    assert pick_candidate(candidates, "auto", {"summary": summary}, min_oof_auc=0.999).name == "a"  # none passes
    summary["loso_attacked"] = {"a": {"mean": 0.90, "min": 0.6}, "b": {"mean": 0.93, "min": 0.6},
                                "stacker": {"mean": 0.97, "min": 0.7}}  # fmt: skip
    assert pick_candidate(candidates, "auto", {"summary": summary}).name == "stacker"  # every protocol counts
    with pytest.raises(DaigtError, match="not a candidate"):
        pick_candidate(candidates, "c")


@pytest.mark.parametrize("monotone", [False, True])
def test_monotone_stacker_never_lowers_its_score_when_a_model_score_rises(monotone: bool) -> None:
    """A quirk planted in the training data (high p_b means human in one band) is learned without the
    constraint and refused with it; style columns stay unconstrained."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 600).astype(float)
    p_b = rng.random(600)
    band = (p_b > 0.6) & (p_b < 0.8)
    p_b[band & (labels == 1)] = rng.random((band & (labels == 1)).sum()) * 0.5  # AI rarely inside the band
    x = pd.DataFrame({"p_a": labels * 0.4 + rng.random(600) * 0.6, "p_b": p_b, "meta_len": rng.random(600)})
    params = StackerConfig(n_estimators=60, num_leaves=8, min_child_samples=5, n_jobs=1, seed=1)
    params.monotone_in_models = monotone
    _, boosters = nested_stacker(x, labels, np.arange(600) % 3, params)
    grid = pd.DataFrame({"p_a": 0.5, "p_b": np.linspace(0, 1, 101), "meta_len": 0.5})
    steps = np.diff(stacker_predict(boosters, grid))
    if monotone:
        assert (steps >= -1e-12).all()
    else:
        assert (steps < -1e-3).any()  # the unconstrained stacker does learn the quirk: the test can fail


def test_the_stacker_also_trains_on_attacked_oof_rows_but_is_scored_on_clean_ones(monkeypatch) -> None:
    import daigt.stacking as stacking
    from daigt.stacking import FeatureConfig, ModelPredictions, build_candidates

    rng = np.random.default_rng(5)
    n = 120
    labels = rng.integers(0, 2, n).astype(float)
    train = pd.DataFrame({"id": [f"e{i}" for i in range(n)], "text": ["some words here"] * n, "label": labels,
                          "fold": np.arange(n) % 3})  # fmt: skip
    clean, hit = labels * 0.5 + rng.random(n) * 0.5, labels * 0.3 + rng.random(n) * 0.7
    models = {"m": ModelPredictions("m", clean, {"test": clean[:5]}, oof_attacked=hit)}
    seen: list[int] = []
    real = stacking.nested_stacker
    monkeypatch.setattr(stacking, "nested_stacker", lambda x, *rest: seen.append(len(x)) or real(x, *rest))
    params = StackerConfig(n_estimators=20, num_leaves=4, min_child_samples=5, n_jobs=1)
    features = FeatureConfig(meta=False)
    out = build_candidates(models, train, {"test": train.head(5)}, features, params, attacked_texts=train["text"])
    assert seen == [2 * n] and len(out["stacker"].oof) == n
    build_candidates(models, train, {"test": train.head(5)}, features, params)  # no attacked texts: clean only
    assert seen[-1] == n

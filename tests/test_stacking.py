"""The nested stacker: fold boosters score any rows by feature name."""

from __future__ import annotations

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
    oof, _, boosters = nested_stacker(x, labels, folds, x.head(20), params)
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

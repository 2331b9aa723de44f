"""The contract every registered model family keeps (docs/families.md): typed params with
defaults, fit on tiny data, probabilities in [0, 1] for any frame, save -> load gives the same predictions,
the same seed gives the same model, and the fold predictor agrees with the fold models it combines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_essays

from daigt.families import FAMILIES, FitContext, get_family
from daigt.schema import to_dict


def tiny_params(family: str, tiny_models: dict[str, Path]) -> dict[str, Any]:
    """Small, fast parameters per family. A new family must add its entry here (the test below insists)."""
    transformer = {"max_length": 48, "batch_size": 8, "epochs": 1, "lr": 3.0e-3}
    params = {
        "tfidf": {"vectorizer": {"analyzer": "word", "ngram_range": [1, 2]}, "classifiers": {"multinomial_nb": {}}},
        "ngram_lm": {"order": 2},
        "reference_lm": {},
        "encoder": {"pretrained": str(tiny_models["deberta"]), **transformer},
        "causal_lm": {"pretrained": str(tiny_models["mistral"]), "lora": {"r": 4, "alpha": 8}, **transformer},
        "lm_score": {
            "observer": str(tiny_models["mistral"]),
            "performer": str(tiny_models["mistral_b"]),
            "scale": 0.01,
        },
    }
    return params[family]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    essays = make_essays(60, seed=4).rename(columns={"generated": "label"})
    train = essays.assign(label=essays["label"].astype(float), group="", source="")
    test = make_essays(7, seed=9)[["id", "text"]]
    return train, test


@pytest.mark.parametrize("family_name", sorted(FAMILIES))
def test_family_keeps_the_contract(
    family_name: str, data: tuple[pd.DataFrame, pd.DataFrame], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    train, test = data
    family = get_family(family_name)
    params = tiny_params(family_name, tiny_models)
    model = family(params, seed=3)
    assert to_dict(model.params) == to_dict(family(to_dict(model.params), seed=3).params)  # defaults filled, stable
    context = FitContext(unlabeled=test, progress=False)
    model.fit(train, context)
    preds = model.predict(test)
    assert preds.shape == (len(test),) and np.all((preds >= 0) & (preds <= 1)) and np.isfinite(preds).all()
    assert model.predict(test.head(1)).shape == (1,)

    (tmp_path / "model").mkdir()
    model.save(tmp_path / "model")
    reloaded = family.load(tmp_path / "model")
    np.testing.assert_allclose(reloaded.predict(test), preds, atol=1e-5)

    again = family(params, seed=3)
    again.fit(train, context)
    np.testing.assert_allclose(again.predict(test), preds, atol=1e-6)  # same seed, same model

    combined = family.fold_predictor([model, reloaded])(test)
    np.testing.assert_allclose(combined, preds, atol=1e-5)


@pytest.mark.parametrize("family_name", sorted(name for name in FAMILIES if get_family(name).takes_row_weights))
def test_a_family_that_takes_row_weights_is_moved_by_them(
    family_name: str, data: tuple[pd.DataFrame, pd.DataFrame], tiny_models: dict[str, Path]
) -> None:
    """``weighting:`` is only accepted for these families, so their fit must read the ``weight`` column: AI
    essays weighed 10x against human ones move every prediction up."""
    train, test = data
    family = get_family(family_name)
    params = tiny_params(family_name, tiny_models)
    context = FitContext(unlabeled=test, progress=False)
    plain, weighed = family(params, seed=3), family(params, seed=3)
    plain.fit(train.assign(weight=1.0), context)
    weighed.fit(train.assign(weight=np.where(train["label"] > 0.5, 10.0, 1.0)), context)
    assert np.all(weighed.predict(test) >= plain.predict(test) - 1e-9)
    assert np.mean(weighed.predict(test)) > np.mean(plain.predict(test))

"""Zero-shot LM scores (Binoculars, Fast-DetectGPT) on a pair of tiny random Mistrals sharing a tokenizer:
the batched scorer equals the papers' formulas computed directly, one essay at a time, in float64."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_essays
from helpers import blend_args, listed, predict_args, train_args

import blend
import predict
import train_fold
from daigt.errors import DaigtError
from daigt.families.lm_score import LmScoreFamily, LmScoreParams, PairScorer


def direct_scores(texts: list[str], pair: PairScorer, max_length: int) -> dict[str, np.ndarray]:
    """Both criteria written out from the papers, per essay, no batching or padding, in float64."""
    import torch

    out: dict[str, list[float]] = {"binoculars": [], "fast_detectgpt": []}
    for text in texts:
        ids = pair.tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            obs, perf = (m(input_ids=ids).logits[0, :-1].double() for m in pair.models)
        target = ids[0, 1:]
        obs_logp, perf_logp = torch.log_softmax(obs, -1), torch.log_softmax(perf, -1)
        positions = torch.arange(len(target))
        log_ppl = -perf_logp[positions, target].mean()
        x_ppl = -(torch.softmax(obs, -1) * perf_logp).sum(-1).mean()
        out["binoculars"].append(float(log_ppl / x_ppl))
        ref = torch.softmax(perf, -1)
        mean = (ref * obs_logp).sum(-1)
        var = (ref * obs_logp**2).sum(-1) - mean**2
        out["fast_detectgpt"].append(float((obs_logp[positions, target] - mean).sum() / var.sum().sqrt()))
    return {k: np.array(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def texts() -> list[str]:
    essays = make_essays(10, seed=5)["text"].tolist()
    return [*essays, "Short one.", essays[0] + " " + essays[1]]  # very different lengths share batches


@pytest.mark.parametrize("method", ["binoculars", "fast_detectgpt"])
def test_batched_scores_equal_the_formulas_computed_directly(
    method: str, texts: list[str], tiny_models: dict[str, Path]
) -> None:
    params = LmScoreParams(method=method, observer=str(tiny_models["mistral"]), performer=str(tiny_models["mistral_b"]))
    params.max_length, params.batch_size = 40, 5
    pair = PairScorer.get(params)
    expected = direct_scores(texts, pair, params.max_length)[method]
    # float32 forwards: their sums' rounding depends on batch shape and torch's thread count (which other tests
    # may have changed), ~2e-5 here; a padding or masking mistake moves scores by 1e-2 or more
    tolerance = {"rtol": 1e-4, "atol": 1e-4}
    np.testing.assert_allclose(pair.score(texts, params), expected, **tolerance)
    params.batch_size = 2  # other batch compositions, other padding: the same scores
    np.testing.assert_allclose(pair.score(texts, params), expected, **tolerance)
    long_text = texts[-1]
    assert len(pair.tokenizer(long_text)["input_ids"]) > params.max_length
    padded_past_the_cut = pair.score([long_text + " and then many more words" * 20], params)
    np.testing.assert_allclose(padded_past_the_cut, pair.score([long_text], params), rtol=1e-6)  # truncated
    assert np.std(expected) > 0  # the essays really differ: the comparison can fail


def test_observer_and_performer_must_share_a_tokenizer(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(DaigtError, match="do not share a tokenizer"):
        PairScorer(LmScoreParams(observer=str(tiny_models["mistral"]), performer=str(tiny_models["deberta"])))


def test_calibration_keeps_the_ranking_and_fits_the_direction(tiny_models: dict[str, Path]) -> None:
    train = make_essays(40, seed=2).rename(columns={"generated": "label"}).assign(group="", source="")
    params = {"observer": str(tiny_models["mistral"]), "performer": str(tiny_models["mistral_b"]), "max_length": 32}
    fixed, calibrated = LmScoreFamily(params, 0), LmScoreFamily({**params, "calibrate": True}, 0)
    for model in (fixed, calibrated):
        model.fit(train.assign(label=train["label"].astype(float)), context=_context())
    raw = fixed.raw_scores(train["text"].tolist())
    for model in (fixed, calibrated):
        probs = model.predict(train)
        assert (np.diff(probs[np.argsort(raw)]) <= 1e-12).all() or (np.diff(probs[np.argsort(raw)]) >= -1e-12).all()
    assert fixed.map[0] < 0  # binoculars: lower score, more likely machine


def _context():
    from daigt.families import FitContext

    return FitContext(progress=False)


def test_lm_score_runs_through_train_fold_blend_and_predict(
    workspace: dict[str, Path], tiny_models: dict[str, Path], capsys
) -> None:
    config = workspace["root"] / "tiny_binoculars.yaml"
    params = {"observer": str(tiny_models["mistral"]), "performer": str(tiny_models["mistral_b"]), "max_length": 32}
    config.write_text(yaml.safe_dump({"family": "lm_score", "seed": 0, "params": params}))
    workspace["model"] = config
    train_fold.main(train_args(workspace))
    metrics = json.loads((workspace["artifacts"] / "tiny_binoculars" / "fold0" / "metrics.json").read_text())
    assert metrics["family"] == "lm_score" and 0 <= metrics["auc"] <= 1
    listed(workspace, "tiny_binoculars")
    out = workspace["root"] / "sub" / "submission.csv"
    blend.main(blend_args(workspace, out))
    preds = workspace["root"] / "preds.csv"
    predict.main(predict_args(workspace, str(workspace["test"]), preds))
    submitted, predicted = pd.read_csv(out), pd.read_csv(preds)
    np.testing.assert_allclose(predicted["score"], submitted["generated"], atol=1e-9)

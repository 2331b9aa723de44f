"""The second task end to end on a tiny project whose AI essays come from two generator families: blend trains,
reports and saves it; predict, --by generator and serve carry it; the submission does not change; a damaged
attribution file is refused; evaluate holds each generator out."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_essays, make_workspace
from fastapi.testclient import TestClient
from helpers import blend_args, blended, predict_args

import blend
import evaluate
import predict
from daigt.artifacts import ATTRIBUTION_FILE
from daigt.config import BLEND_CONFIG, load_yaml
from daigt.decisions import AI, UNKNOWN
from daigt.inference import GENERATOR_COLUMNS, EnsemblePredictor
from daigt.service import ServeLimits, create_app

pytestmark = pytest.mark.integration

OPENAI = ["delve", "tapestry", "moreover", "pivotal", "foster", "intricate"]
STYLE = {"gpt-4": OPENAI, "gpt-3.5-turbo": OPENAI, "llama-2-chat": ["certainly", "hey", "absolutely", "awesome"]}
FAMILY = {"gpt-4": "openai-chat", "gpt-3.5-turbo": "openai-chat", "llama-2-chat": "llama"}


def generator_essays(n: int, seed: int = 0) -> pd.DataFrame:
    """``make_essays``, its AI essays split between three sources of two families, each family with its own
    style words."""
    essays = make_essays(n, seed=seed)
    rng = random.Random(seed)
    ai = np.flatnonzero(essays["generated"] == 1)
    for k, row in enumerate(ai):
        source = list(STYLE)[k % 3]
        extra = " ".join(rng.choice(STYLE[source]) for _ in range(12))
        essays.loc[row, ["source", "text"]] = [source, f"{essays.loc[row, 'text']} {extra}"]
    return essays


@pytest.fixture(scope="module")
def attributed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return blended(make_workspace(tmp_path_factory.mktemp("attributed"), generator_essays(200)), "rank_mean")


def test_blend_trains_reports_and_saves_the_second_task(attributed: dict[str, Path]) -> None:
    folder = attributed["submission"].parent
    report = json.loads((folder / "report.json").read_text())["attribution"]
    assert report["classes"] == ["llama", "openai-chat"]
    assert report["oof"]["macro_f1"] > 0.8 and sum(map(sum, report["oof"]["confusion"])) == report["oof"]["n"]
    assert (folder / "attribution.png").is_file()
    assert "generator attribution" in (folder / "report.md").read_text()
    assert (attributed["ensemble"] / ATTRIBUTION_FILE).is_file()


def test_predict_adds_the_generator_only_to_texts_decided_ai(attributed: dict[str, Path], tmp_path: Path, capsys):
    source = tmp_path / "new.csv"
    generator_essays(60, seed=4).rename(columns={"generated": "label"}).to_csv(source, index=False)
    out = tmp_path / "preds.csv"
    predict.main(predict_args(attributed, str(source), out, "--by", "generator"))
    preds = pd.read_csv(out)
    assert list(preds.columns)[-2:] == list(GENERATOR_COLUMNS)
    assert (preds.loc[preds["decision"] != AI, "generator"] == UNKNOWN).all()
    assert set(preds["generator"]) <= {"llama", "openai-chat", UNKNOWN}
    named = preds["generator"] != UNKNOWN
    assert named.any() and (preds.loc[named, "generator_probability"] >= 0.98).all()
    assert preds.loc[preds["decision"] != AI, "generator_probability"].isna().all()  # never scored
    truth = pd.read_csv(source)["source"].map(FAMILY)
    assert (preds.loc[named, "generator"] == truth[named]).mean() > 0.9
    table = capsys.readouterr().err
    assert "| generator |" in table and "| unknown |" in table


def test_the_service_returns_the_generator_like_predict(attributed: dict[str, Path]) -> None:
    predictor = EnsemblePredictor.load(attributed["ensemble"])
    essays = generator_essays(20, seed=6)
    client = TestClient(create_app(predictor, ServeLimits()))
    body = {"essays": [{"id": str(i), "text": t} for i, t in zip(essays["id"], essays["text"], strict=True)]}
    got = pd.DataFrame(client.post("/predict", json=body).json()["predictions"])
    expected = predictor.score(essays[["id", "text"]])
    assert got["generator"].tolist() == expected["generator"].tolist()
    np.testing.assert_allclose(got["generator_probability"], expected["generator_probability"])


def test_the_submission_is_the_same_with_and_without_the_second_task(attributed: dict[str, Path]) -> None:
    cfg = load_yaml(BLEND_CONFIG)
    cfg["features"]["ranks"], cfg["pick"], cfg["attribution"]["enabled"] = True, "rank_mean", False
    config = attributed["root"] / "blend_without.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = attributed["root"] / "without" / "submission.csv"
    args = blend_args(attributed, out)
    args[args.index("--ensemble") + 1] = str(attributed["root"] / "ensemble_without")
    blend.main([*args, "--blend-config", str(config)])
    assert out.read_bytes() == attributed["submission"].read_bytes()
    assert json.loads((out.parent / "report.json").read_text()).get("attribution") is None
    assert not (attributed["root"] / "ensemble_without" / ATTRIBUTION_FILE).exists()


def test_a_damaged_attribution_file_is_one_line(attributed: dict[str, Path], tmp_path: Path, capsys) -> None:
    copy = tmp_path / "ensemble"
    shutil.copytree(attributed["ensemble"], copy)
    (copy / ATTRIBUTION_FILE).write_bytes(b"not a model")
    with pytest.raises(SystemExit) as exit_:
        predict.main(["--input", str(attributed["test"]), "--ensemble", str(copy), "--no-progress"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"{copy / ATTRIBUTION_FILE}: changed since blend wrote it; rerun `python src/blend.py` "
                            "to write it again")  # fmt: skip


def test_by_generator_needs_an_ensemble_with_the_second_task(workspace: dict[str, Path], capsys) -> None:
    ws = blended(workspace, "rank_mean")  # make_essays: one AI source, nothing to tell apart
    with pytest.raises(SystemExit):
        predict.main(predict_args(ws, str(ws["test"]), None, "--by", "generator"))
    assert "saved without generator attribution" in capsys.readouterr().err


def test_evaluate_holds_each_generator_out_of_the_second_task(attributed: dict[str, Path], tmp_path: Path) -> None:
    cfg = {"loso": {"min_essays": 20}, "lopo": None, "logo": None, "attack": None, "inner_folds": 3}
    eval_config = tmp_path / "evaluate.yaml"
    eval_config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "generalization.json"
    ws = attributed
    evaluate.main(["--config", str(ws["project"]), "--artifacts", str(ws["artifacts"]), "--eval-config",
                   str(eval_config), "--blend-config", str(ws["root"] / "blend.yaml"), "--out", str(out),
                   "--models", str(ws["model"]), str(ws["root"] / "tiny_char.yaml"), "--no-progress"])  # fmt: skip
    rows = {r["group"]: r["attribution"] for r in json.loads(out.read_text())["splits"]}
    assert set(rows) == set(STYLE)
    # llama-2-chat held out leaves one family: nothing to tell apart, nothing attributed
    assert rows["llama-2-chat"] is None
    for source in ("gpt-4", "gpt-3.5-turbo"):  # its family is still learnt from the other OpenAI source
        row = rows[source]
        assert row["family"] == "openai-chat" and row["family_learnt"]
        assert row["n_decided_ai"] > 0 and row["right"] > 0.5 and row["wrong_named"] < 0.1, row
        assert row["all_ai"]["n_decided_ai"] >= row["n_decided_ai"]
    text = out.with_suffix(".md").read_text()
    assert "Leave one generator out" in text and "| gpt-4 | openai-chat | yes |" in text

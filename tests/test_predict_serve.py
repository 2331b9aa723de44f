"""Inference side on a tiny trained ensemble: predict equals blend, streams, refuses bad input; the HTTP service."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_essays, make_workspace
from helpers import blended, predict_args

import predict
from daigt.config import REPO_ROOT
from daigt.decisions import AI, HUMAN, OUT_OF_DOMAIN, REASONS, UNKNOWN
from daigt.distributed import free_port
from daigt.inference import EnsemblePredictor

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Built once for the module; tests that damage it work on a copy."""
    return blended(make_workspace(tmp_path_factory.mktemp("stacked"), make_essays(120)), "stacker")


@pytest.mark.parametrize("pick", ["stacker", "rank_mean", "tiny_tfidf"])
def test_predict_equals_the_blends_test_predictions(
    stacked: dict[str, Path], workspace: dict[str, Path], pick: str
) -> None:
    ws = stacked if pick == "stacker" else blended(workspace, pick)
    out = workspace["root"] / "preds.csv"
    predict.main(predict_args(ws, str(ws["test"]), out))
    preds = pd.read_csv(out, dtype={"id": str})
    submission = pd.read_csv(ws["submission"], dtype={"id": str})
    assert list(preds.columns) == ["id", "score", "probability", "in_domain", "decision", "reason"]
    assert (preds["id"] == submission["id"]).all()
    assert np.allclose(preds["score"], submission["generated"], atol=1e-9)
    thresholds = json.loads((ws["submission"].parent / "report.json").read_text())["thresholds"]
    high = np.where(preds["in_domain"] < thresholds["edge_below"], thresholds["edge_high"], thresholds["high"])
    expected = np.where(preds["score"] >= high, AI, np.where(preds["score"] < thresholds["low"], HUMAN, UNKNOWN))
    short = pd.read_csv(ws["test"])["text"].str.split().str.len() < thresholds["min_words"]
    away = preds["in_domain"] < thresholds["out_of_domain_below"]
    assert (preds["decision"] == np.where(short | away, UNKNOWN, expected)).all()
    assert set(preds["reason"]) <= set(REASONS)
    assert (preds.loc[away & ~short, "reason"] == OUT_OF_DOMAIN).all()
    # the probability is the score, calibrated: the same order
    order = np.argsort(preds["score"].to_numpy(), kind="stable")
    assert (np.diff(preds["probability"].to_numpy()[order]) >= -1e-12).all()


def test_predict_abstains_on_other_domains_with_a_reason_and_reports_per_group(
    stacked: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """Essays of another domain are out_of_domain, never ai; --by prints (and writes) the per-group table."""
    same = make_essays(30, seed=5)[["text", "generated"]].assign(domain="essays")
    recipes = [
        "flour",
        "butter",
        "oven",
        "bake",
        "dough",
        "sugar",
        "recipe",
        "minutes",
        "whisk",
        "pan",
        "cinnamon",
        "vanilla",
    ]
    rng = np.random.default_rng(0)
    other = pd.DataFrame(
        {"text": [" ".join(rng.choice(recipes, 60)) for _ in range(20)], "generated": [0, 1] * 10, "domain": "recipes"}
    )
    source, out, report = tmp_path / "mixed.csv", tmp_path / "preds.csv", tmp_path / "by.md"
    pd.concat([same, other]).to_csv(source, index=False)
    capsys.readouterr()
    predict.main(predict_args(stacked, str(source), out, "--by", "domain", "--by-report", str(report)))
    preds = pd.read_csv(out)
    assert "domain" not in preds.columns and len(preds) == 50
    assert (preds["decision"].iloc[30:] == UNKNOWN).all() and (preds["reason"].iloc[30:] == OUT_OF_DOMAIN).all()
    assert (preds["reason"].iloc[:30] != OUT_OF_DOMAIN).mean() > 0.8
    err = capsys.readouterr().err
    assert "| recipes | 20 | 0.0% (10) | 0.0% (10) | 0.0% | 100.0% | 100.0% |" in err
    assert "out_of_domain 20" in err or "out_of_domain 2" in err
    assert report.is_file() and report.with_suffix(".png").is_file()


def test_predict_streams_chunks_and_stdin_to_the_same_scores(
    stacked: dict[str, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    test = pd.read_csv(stacked["test"], dtype={"id": str})
    jsonl = tmp_path / "essays.jsonl"
    test[["id", "text"]].to_json(jsonl, orient="records", lines=True)
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    predict.main(predict_args(stacked, str(stacked["test"]), whole))
    predict.main(predict_args(stacked, str(jsonl), chunked, "--batch-size", "2"))
    pd.testing.assert_frame_equal(pd.read_csv(whole), pd.read_csv(chunked))

    capsys.readouterr()
    stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(stacked["test"].read_bytes())))
    monkeypatch.setattr(sys, "stdin", stdin)
    predict.main(predict_args(stacked, "-", None, "--batch-size", "4"))
    captured = capsys.readouterr()
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(captured.out)), pd.read_csv(whole))
    assert "9 essays scored by stacker" in captured.err

    with_progress = [a for a in predict_args(stacked, str(stacked["test"]), tmp_path / "p.csv") if a != "--no-progress"]
    predict.main(with_progress)  # a few essays, done in well under the bar's delay: no "0essay [00:00, ?essay/s]"
    assert "essay" not in capsys.readouterr().err.replace("9 essays scored", "")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"id,essay_body\na,hello\n", "no text column"),
        (b"id,text\na,fine\nb,caf\xe9 au lait\n", "byte 0xe9 at line 3"),
        (b"id,text\na,fine\nb,  \n", "row 2, column 'text': text is empty"),
        (b"id,text\n" + b"".join(b"e%d,essay number %d\n" % (i, i) for i in range(7)) + b"e3,again\n", "row 8"),
    ],
)
def test_predict_bad_input_one_line_exit_2_nothing_written(
    stacked: dict[str, Path], tmp_path: Path, capsys, content: bytes, message: str
) -> None:
    source, out = tmp_path / "bad.csv", tmp_path / "bad_preds.csv"
    source.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        predict.main(predict_args(stacked, str(source), out, "--batch-size", "3"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(source) in err[0]
    assert not out.exists() and not list(out.parent.glob(".bad_preds.csv.*"))


def test_predict_names_the_missing_model_artifacts(stacked: dict[str, Path], tmp_path: Path, capsys) -> None:
    artifacts = tmp_path / "artifacts"
    shutil.copytree(stacked["artifacts"], artifacts)
    shutil.rmtree(artifacts / "tiny_char" / "fold1")
    with pytest.raises(SystemExit):
        predict.main([*predict_args(stacked, str(stacked["test"]), None), "--artifacts", str(artifacts)])
    err = capsys.readouterr().err
    assert "fold model of 'tiny_char' (tfidf) is missing" in err and "train_fold.py --fold 1" in err


@pytest.fixture
def service(stacked: dict[str, Path], tmp_path: Path):
    config = tmp_path / "serve.yaml"
    limits = {"max_essays": 4, "max_chars": 2_000, "max_body_bytes": 20_000}
    config.write_text(yaml.safe_dump({"ensemble": str(stacked["ensemble"]), "limits": limits}))
    port = free_port()
    cmd = [sys.executable, str(REPO_ROOT / "src" / "serve.py"), "--serve-config", str(config), "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                break
        except httpx.TransportError:
            if proc.poll() is not None:
                pytest.fail(f"service exited: {proc.stdout.read()}")
            time.sleep(0.2)
    yield base, stacked
    proc.terminate()
    proc.wait(timeout=10)


def test_service_scores_like_predict_and_enforces_limits(service) -> None:
    base, ws = service
    test = pd.read_csv(ws["test"], dtype={"id": str}).head(4)
    body = {"essays": [{"id": i, "text": t} for i, t in zip(test["id"], test["text"], strict=True)]}
    response = httpx.post(f"{base}/predict", json=body)
    assert response.status_code == 200
    got = pd.DataFrame(response.json()["predictions"])
    expected = EnsemblePredictor.load(ws["ensemble"]).score(test)
    assert got["id"].tolist() == test["id"].tolist()
    for column in ("score", "probability", "in_domain"):
        assert np.allclose(got[column], expected[column], atol=1e-9)
    assert got["decision"].tolist() == expected["decision"].tolist()
    assert got["reason"].tolist() == expected["reason"].tolist()
    away = httpx.post(f"{base}/predict", json={"essays": [{"text": "flour butter oven bake dough sugar " * 12}]})
    assert away.json()["predictions"][0]["reason"] == OUT_OF_DOMAIN
    assert away.json()["predictions"][0]["decision"] == UNKNOWN

    too_many = {"essays": body["essays"] * 2}
    assert httpx.post(f"{base}/predict", json=too_many).status_code == 422
    assert "limit is 4" in httpx.post(f"{base}/predict", json=too_many).json()["detail"]
    too_long = httpx.post(f"{base}/predict", json={"essays": [{"text": "word " * 1_000}]})
    assert too_long.status_code == 422 and "characters; the limit is 2000" in too_long.json()["detail"]
    huge = httpx.post(f"{base}/predict", content=b"x" * 30_000, headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "limit is 20000" in huge.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while the body arrives
        for _ in range(40):
            yield b"x" * 1_000

    chunked = httpx.post(f"{base}/predict", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413 and "limit is 20000" in chunked.json()["detail"]
    small_chunked = httpx.post(f"{base}/predict", content=iter([json.dumps(body).encode()]),
                               headers={"content-type": "application/json"})  # fmt: skip
    assert small_chunked.status_code == 200
    surrogate = b'{"essays": [{"text": "an essay \\ud800 with a lone surrogate"}]}'
    lone = httpx.post(f"{base}/predict", content=surrogate, headers={"content-type": "application/json"})
    assert lone.status_code == 422 and "lone surrogate" in lone.json()["detail"]
    assert httpx.post(f"{base}/predict", json={"essays": []}).status_code == 422
    assert httpx.post(f"{base}/predict", json={"texts": ["no essays key"]}).status_code == 422
    assert httpx.get(f"{base}/health").json()["picked"] == "stacker"


def test_a_moved_ensemble_still_predicts_the_same_scores(stacked: dict[str, Path], tmp_path: Path) -> None:
    """Moved together with its fold models (relative path), or alone (the path it was saved with)."""
    test = pd.read_csv(stacked["test"], dtype={"id": str})
    expected = EnsemblePredictor.load(stacked["ensemble"]).predict_proba(test)
    together = tmp_path / "package"
    shutil.copytree(stacked["ensemble"], together / "ensemble")
    shutil.copytree(stacked["artifacts"], together / "artifacts")
    moved = stacked["artifacts"].with_name("artifacts-parked")
    stacked["artifacts"].rename(moved)  # the original folder is gone: only the relative path can find them
    try:
        np.testing.assert_allclose(EnsemblePredictor.load(together / "ensemble").predict_proba(test), expected)
    finally:
        moved.rename(stacked["artifacts"])
    alone = tmp_path / "elsewhere" / "ensemble"
    shutil.copytree(stacked["ensemble"], alone)
    np.testing.assert_allclose(EnsemblePredictor.load(alone).predict_proba(test), expected)


def test_models_scored_side_by_side_in_threads_equal_one_at_a_time(stacked: dict[str, Path]) -> None:
    test = pd.read_csv(stacked["test"], dtype={"id": str})
    alone = EnsemblePredictor.load(stacked["ensemble"], threads=1)
    together = EnsemblePredictor.load(stacked["ensemble"], threads=2)
    assert len(together.fold_predictors) >= 2
    where: dict[str, str] = {}
    for name, score in list(together.fold_predictors.items()):
        together.fold_predictors[name] = lambda frame, _s=score, _n=name: (
            where.setdefault(_n, threading.current_thread().name) and _s(frame)
        )
    np.testing.assert_array_equal(together.predict_proba(test), alone.predict_proba(test))
    assert all(thread.startswith("model") for thread in where.values()), where  # scored in the pool's threads

"""A competitor's quick iterations: --sample N runs apart from the full run, --set overrides config keys."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import blend_args, train_args

import blend
import train_fold
from daigt.config import load_model_config, parse_overrides
from daigt.errors import DaigtError


def test_a_sample_run_trains_and_blends_on_n_essays_apart_from_the_full_run(workspace: dict[str, Path], capsys) -> None:
    train_fold.main(train_args(workspace, "--sample", "60"))
    said = capsys.readouterr().out.splitlines()[0]  # which data, how many essays: before any fold trains
    assert said.startswith(f"[data] {workspace['train']} (--sample 60): 60 training essays (")
    assert "human) in 3 folds, 0 in the locked holdout" in said
    sample_dir = workspace["artifacts"] / "sample-60" / "tiny_tfidf"
    oof = pd.concat(pd.read_csv(p, dtype={"id": str}) for p in sample_dir.glob("fold*/oof.csv"))
    labels = pd.read_csv(workspace["train"], dtype={"id": str}).set_index("id")["generated"]
    assert len(oof) == 60 and set(labels[oof["id"]]) == {0, 1}  # stratified: both classes
    assert not (workspace["artifacts"] / "tiny_tfidf").exists()  # the full run's folder is untouched
    assert (workspace["folds"].parent / "sample-60" / "folds.csv").is_file() and not workspace["folds"].exists()
    out = workspace["root"] / "sample.csv"
    blend.main([*blend_args(workspace, out), "--sample", "60"])
    report = json.loads((workspace["root"] / "report.json").read_text())
    assert report["n_train"] == 60
    with pytest.raises(SystemExit):  # the full run has no models yet: blend says so, it does not take the sample's
        blend.main(blend_args(workspace, workspace["root"] / "full.csv"))


def test_set_overrides_a_model_config_and_its_keys_are_checked(workspace: dict[str, Path], capsys) -> None:
    _, config = load_model_config(str(workspace["model"]), ["params.vectorizer.min_df=2", "seed=9"])
    assert config.seed == 9 and config.params.vectorizer["min_df"] == 2
    assert parse_overrides(["a.b=[1, 2]", "a.c=null"]) == {"a": {"b": [1, 2], "c": None}}
    with pytest.raises(DaigtError, match=r"expected key\.path=value"):
        parse_overrides(["params.vocab_size"])
    with pytest.raises(SystemExit):
        train_fold.main(train_args(workspace, "--set", "params.vocab_sise=10"))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "with --set" in err and "vocab_sise" in err

"""A competitor's quick iterations: --sample N runs apart from the full run, --set overrides config keys."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import blend_args, train_args

import blend
import train_fold
from daigt.config import parse_overrides
from daigt.errors import DaigtError
from daigt.model_configs import load_model_config


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
    config = load_model_config(str(workspace["model"]), ["params.vectorizer.min_df=2", "seed=9"]).config
    assert config.seed == 9 and config.params.vectorizer.min_df == 2
    assert parse_overrides(["a.b=[1, 2]", "a.c=null"]) == {"a": {"b": [1, 2], "c": None}}
    with pytest.raises(DaigtError, match=r"expected key\.path=value"):
        parse_overrides(["params.vocab_size"])
    with pytest.raises(SystemExit):
        train_fold.main(train_args(workspace, "--set", "params.vocab_sise=10"))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "with --set" in err and "vocab_sise" in err


@pytest.mark.parametrize(
    ("entry", "typo", "closest"),
    [
        ("train_fold", "params.vectorizer.min_dff=2", "min_df"),
        ("blend", "decisions.target_fpt=0.005", "target_fpr"),
        ("evaluate", "loso.min_esays=30", "min_essays"),
        ("serve", "limits.max_esays=128", "max_essays"),
    ],
)
def test_every_entry_point_with_a_config_takes_set_and_a_typo_names_the_closest_key(
    entry: str, typo: str, closest: str, workspace: dict[str, Path], capsys
) -> None:
    import importlib

    main = importlib.import_module(entry).main
    argv = {"train_fold": train_args(workspace), "blend": blend_args(workspace, workspace["root"] / "s.csv")}
    with pytest.raises(SystemExit):  # refused before any work: nothing trained, read or served
        main([*argv.get(entry, ["--config", str(workspace["project"])] if entry == "evaluate" else []), "--set", typo])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and typo.split("=")[0].rsplit(".", 1)[-1] in err and closest in err, err
    assert not (workspace["artifacts"]).exists()


def test_quiet_silences_stage_lines_and_verbose_keeps_them_for_spawned_workers(capsys) -> None:
    import os

    from daigt.cli_options import add_output_options, configure_output
    from essayio import console

    def said(*flags: str) -> str:
        import argparse

        parser = argparse.ArgumentParser()
        add_output_options(parser)
        configure_output(parser.parse_args(list(flags)))
        console.stage("[x] a stage line")
        console.detail("[x] a detail")
        console.warn("a warning")
        console.say("a result")
        out = capsys.readouterr()
        return out.out + out.err

    normal = said()
    assert "[x] a stage line" in normal and "a detail" not in normal and "a warning" in normal and "a result" in normal
    quiet = said("--quiet")
    assert "stage line" not in quiet and "a warning" in quiet and "a result" in quiet and not console.bars_on()
    assert said("--no-progress") == quiet
    verbose = said("--verbose")
    assert "a detail" in verbose and os.environ[console.ENV] == str(console.VERBOSE)  # what a spawned worker reads

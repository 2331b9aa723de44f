"""Training data as competitors have it: Kaggle's files as downloaded, several files at once, and the one-line
error when a class is too small for the folds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import make_essays
from helpers import train_args

import train_fold
from daigt.errors import DaigtError
from daigt.project import Project


def _config(ws: dict[str, Path], **changes: object) -> None:
    config = yaml.safe_load(ws["project"].read_text())
    config.update(changes)
    ws["project"].write_text(yaml.safe_dump(config))


def test_kaggle_train_essays_csv_is_found_where_train_csv_is_absent(workspace: dict[str, Path]) -> None:
    data = workspace["root"] / "data"
    data.mkdir()
    kaggle = make_essays(60, seed=1).drop(columns=["source"]).rename(columns={"prompt_name": "prompt_id"})
    kaggle.to_csv(data / "train_essays.csv", index=False)  # as `kaggle competitions download` unpacks it
    _config(workspace, train=str(data / "train.csv"))
    project = Project.load(workspace["project"])
    assert project.train_paths == [data / "train_essays.csv"]
    assert len(project.train_frame()[0]) == 60
    (data / "train.csv").write_text((data / "train_essays.csv").read_text())
    assert Project.load(workspace["project"]).train_paths == [data / "train.csv"]  # an explicit file wins


def test_two_training_files_train_as_one_with_their_names_as_sources(workspace: dict[str, Path]) -> None:
    essays = make_essays(120, seed=2).drop(columns=["source"])
    first, second = workspace["root"] / "kaggle.csv", workspace["root"] / "daigt_v2.parquet"
    essays.iloc[:60].to_csv(first, index=False)
    other = essays.iloc[60:].assign(id=essays["id"].iloc[:60].to_numpy())  # ids that clash with the first file
    other.to_parquet(second)
    train_fold.main([*train_args(workspace), "--train", str(first), str(second)])
    frame = Project.load(workspace["project"], train=[str(first), str(second)]).train_frame()[0]
    assert len(frame) == 120 and frame["id"].is_unique
    assert frame["source"].value_counts().to_dict() == {"kaggle": 60, "daigt_v2": 60}
    oof = pd.concat(pd.read_csv(p) for p in (workspace["artifacts"] / "tiny_tfidf").glob("fold*/oof.csv"))
    assert len(oof) == 120


def test_too_few_essays_of_a_class_is_one_line_with_the_counts_and_the_fix(workspace: dict[str, Path], capsys) -> None:
    essays = make_essays(80, seed=3)
    few_ai = pd.concat([essays[essays["generated"] == 0], essays[essays["generated"] == 1].head(3)])
    few_ai.to_csv(workspace["train"], index=False)  # Kaggle's train_essays.csv: 1,375 human, 3 AI
    with pytest.raises(SystemExit) as stop:
        train_fold.main(train_args(workspace))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.count("\n") == 0
    assert "3 AI-generated essays: 3 folds need at least 6 of each class" in err and "external" in err
    assert "Traceback" not in err and not workspace["artifacts"].exists()


def test_test_ids_that_are_training_ids_and_conflicting_duplicates_are_warned(
    workspace: dict[str, Path], capsys
) -> None:
    essays = pd.read_csv(workspace["train"], dtype={"id": str})
    twin = essays.iloc[[0]].assign(id="twin", generated=1 - int(essays["generated"].iloc[0]))  # same text, other label
    pd.concat([essays, twin]).to_csv(workspace["train"], index=False)
    project = Project.load(workspace["project"], test=str(workspace["train"]))  # the training file as the test
    project.train_frame()
    project.test_frame()
    err = capsys.readouterr().err
    assert "1 groups of duplicate essays carry both labels" in err
    assert f"{len(essays) + 1} of {len(essays) + 1} test ids in {workspace['train']} are also training ids" in err
    Project.load(workspace["project"]).test_frame()  # the real test file: no warning
    assert "training ids" not in capsys.readouterr().err


def test_training_texts_under_new_ids_in_the_test_file_are_warned(workspace: dict[str, Path], capsys) -> None:
    essays = pd.read_csv(workspace["train"], dtype={"id": str})
    renamed = workspace["root"] / "renamed.csv"
    copies = essays.head(5).assign(id=lambda f: "new" + f["id"], text=lambda f: "  " + f["text"].str.upper())
    copies.drop(columns=["generated"]).to_csv(renamed, index=False)
    project = Project.load(workspace["project"], test=str(renamed))
    project.train_frame()
    project.test_frame()
    err = capsys.readouterr().err
    assert f"5 of 5 test texts in {renamed} are also training texts" in err and "training ids" not in err
    Project.load(workspace["project"]).test_frame()
    assert "training texts" not in capsys.readouterr().err


def test_jobs_workers_leave_the_data_warnings_to_their_parent(workspace: dict[str, Path], capfd) -> None:
    """--jobs 2: the parent says what is wrong with the data once; the two model workers stay quiet."""
    essays = pd.read_csv(workspace["train"], dtype={"id": str})
    twin = essays.iloc[[0]].assign(id="twin", generated=1 - int(essays["generated"].iloc[0]))
    pd.concat([essays, twin]).to_csv(workspace["train"], index=False)
    second = workspace["root"] / "tiny_tfidf_b.yaml"
    second.write_text(workspace["model"].read_text().replace("seed: 3", "seed: 4"))
    config = yaml.safe_load(workspace["project"].read_text())
    workspace["project"].write_text(yaml.safe_dump({**config, "models": [str(workspace["model"]), str(second)]}))
    args = train_args(workspace, "--jobs", "2", "--test", str(workspace["train"]))
    train_fold.main([*args[:2], "--model", "all", *args[4:]])
    err = capfd.readouterr().err
    assert err.count("carry both labels") == 1 and err.count("are also training ids") == 1, err


def test_refused_data_leaves_no_dedup_cache_behind(workspace: dict[str, Path]) -> None:
    Project.load(workspace["project"]).train_frame()  # draws the folds for this data
    folds_dir = workspace["folds"].parent
    before = sorted(folds_dir.glob("dedup-*.npy"))
    essays = pd.read_csv(workspace["train"], dtype={"id": str})
    essays.assign(id="x" + essays["id"]).to_csv(workspace["train"], index=False)  # other ids: folds refuse
    with pytest.raises(DaigtError, match="other training data"):
        Project.load(workspace["project"]).train_frame()
    assert sorted(folds_dir.glob("dedup-*.npy")) == before

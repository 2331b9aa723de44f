"""The offline Kaggle package, end to end: built from a tiny ensemble, installed into a fresh venv with pip
unable to reach any index, run as Kaggle runs it (a read-only /kaggle/input tree), equal to src/predict.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_essays, make_workspace
from helpers import blended, predict_args

import package
import predict
from daigt.artifacts import FoldFolder
from daigt.config import REPO_ROOT
from daigt.errors import DaigtError
from daigt.families import get_family
from daigt.kaggle_notebook import MANIFEST
from daigt.packaging import (
    DATASET_METADATA,
    LOCAL_WHEELHOUSE,
    WheelOptions,
    build_package,
    notebook_source,
    rehearse,
    requirement_names,
    upload,
)

pytestmark = pytest.mark.integration

OFFLINE = WheelOptions(find_links=LOCAL_WHEELHOUSE, offline=True)


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with nothing installed: the package must bring everything it imports."""
    venv = tmp_path_factory.mktemp("venv") / "kaggle"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return blended(make_workspace(tmp_path_factory.mktemp("ensemble"), make_essays(120)), "stacker")


def test_the_predict_package_installs_offline_and_equals_predict(
    ensemble: dict[str, Path], fresh_python: Path, tmp_path: Path
) -> None:
    package = tmp_path / "dist" / "kaggle"
    manifest = build_package(package, "predict", OFFLINE, ensemble["ensemble"])
    assert manifest["mode"] == "predict" and any(line.startswith("lightgbm==") for line in manifest["requirements"])
    assert not any(line.startswith("matplotlib==") for line in manifest["requirements"])  # plots: train mode only
    builder = [str(ensemble["root"].resolve()), str(REPO_ROOT)]
    # (fold folders keep their config.yaml as trained, digests and all: the project config as given)
    for path in (
        p for p in package.rglob("*") if p.suffix in {".json", ".py", ".ipynb"} and "artifacts" not in p.parts
    ):
        text = path.read_text(errors="replace")
        assert not any(folder in text for folder in builder), path  # no folder of the machine that built it
    shipped = {f.relative_to(package / "artifacts") for f in (package / "artifacts").glob("*/fold*")}
    assert shipped, "the package ships the fold models"
    for rel in shipped:  # compact where the family has a compact form, and checked as predict checks them
        fold = FoldFolder(package / "artifacts" / rel, rel.parts[0], int(rel.name.removeprefix("fold")))
        family = get_family(fold.verified()["family"])
        trained = ensemble["artifacts"] / rel
        sizes = [sum(f.stat().st_size for f in (d / "model").rglob("*")) for d in (fold.path, trained)]
        assert sizes[0] < sizes[1] if family.has_compact_form else sizes[0] == sizes[1], (rel, sizes)

    done = rehearse(package, ensemble["test"], tmp_path, fresh_python)  # also: nothing written into the input
    assert done.returncode == 0, done.stdout + done.stderr
    submission = pd.read_csv(tmp_path / "kaggle" / "working" / "submission.csv", dtype={"id": str})
    predict.main(predict_args(ensemble, str(ensemble["test"]), tmp_path / "preds.csv"))
    expected = pd.read_csv(tmp_path / "preds.csv", dtype={"id": str})
    assert list(submission.columns) == ["id", "generated"]
    assert (submission["id"] == expected["id"]).all()
    assert np.allclose(submission["generated"], expected["score"], atol=1e-12)

    notebook = json.loads((package / "notebook.ipynb").read_text())
    code = "".join(notebook["cells"][-1]["source"])
    assert notebook["nbformat"] == 4 and code == (package / "notebook.py").read_text()


def test_train_only_wheels_stay_out_of_predict_packages() -> None:
    assert "matplotlib" in requirement_names(["tfidf"], "train")
    assert "matplotlib" not in requirement_names(["tfidf"], "predict")
    assert "lightgbm" in requirement_names(["tfidf"], "predict")


def test_a_damaged_package_stops_the_notebook_before_installing(ensemble: dict[str, Path], tmp_path: Path) -> None:
    package = tmp_path / "kaggle-package"
    build_package(package, "predict", OFFLINE, ensemble["ensemble"])
    booster = next((package / "ensemble" / "stacker").glob("fold*.txt"))
    damaged = booster.read_text()[:-20]  # an interrupted upload
    booster.unlink()  # a hard link to the fixture's ensemble: replaced, not written through
    booster.write_text(damaged)
    done = rehearse(package, ensemble["test"], tmp_path, Path(sys.executable))
    kaggle = tmp_path / "kaggle"
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {kaggle}/input/daigt-ensemble/ensemble/stacker/{booster.name}: damaged (SHA-256 differs from "
        f"{MANIFEST}); upload the package again"
    ]
    assert "pip" not in done.stdout


def test_the_train_package_runs_the_pipeline_in_the_notebook(fresh_python: Path, tmp_path: Path) -> None:
    essays = make_essays(150, seed=4)
    train = tmp_path / "external" / "train.csv"
    train.parent.mkdir()
    essays.to_csv(train, index=False)
    test = tmp_path / "test_essays.csv"
    make_essays(12, seed=9)[["id", "text"]].assign(id=lambda f: "t" + f["id"]).to_csv(test, index=False)
    package = tmp_path / "train-package"
    build_package(package, "train", OFFLINE, train=[train], models=["tfidf_function_words"], jobs=1)

    done = rehearse(package, test, tmp_path / "rehearsal", fresh_python)
    assert done.returncode == 0, done.stdout + done.stderr
    working = tmp_path / "rehearsal" / "kaggle" / "working"
    submission = pd.read_csv(working / "submission.csv", dtype={"id": str})
    assert submission["id"].tolist() == pd.read_csv(test, dtype={"id": str})["id"].tolist()
    # the ensemble the notebook's blend saved scores the test as the submission does
    predict.main(["--input", str(test), "--ensemble", str(working / "daigt" / "ensemble"), "--output",
                  str(tmp_path / "preds.csv"), "--no-progress"])  # fmt: skip
    assert np.allclose(submission["generated"], pd.read_csv(tmp_path / "preds.csv")["score"], atol=1e-12)


def test_a_package_built_for_another_python_says_what_to_rebuild(ensemble: dict[str, Path], tmp_path: Path) -> None:
    package = tmp_path / "kaggle-package"
    build_package(package, "predict", OFFLINE, ensemble["ensemble"])
    manifest = json.loads((package / MANIFEST).read_text())
    (package / MANIFEST).write_text(json.dumps({**manifest, "python": "3.8.10"}))
    done = rehearse(package, ensemble["test"], tmp_path, Path(sys.executable))
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: the package's wheels are for Python 3.8, this notebook runs {running}: rebuild it with python "
        f"src/package.py --out dist/kaggle --python-version {running} --platform manylinux_2_28_x86_64"
    ]
    assert "pip" not in done.stdout


def test_package_refusals_are_one_line(ensemble: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DaigtError, match="needs the training file"):
        build_package(tmp_path / "a", "train", OFFLINE)
    with pytest.raises(DaigtError, match=r"unknown model 'tfidf_wrod'.*did you mean 'tfidf_word'"):
        build_package(tmp_path / "b", "train", OFFLINE, train=[ensemble["train"]], models=["tfidf_wrod"])
    with pytest.raises(DaigtError, match="no saved ensemble"):
        build_package(tmp_path / "c", "predict", OFFLINE, tmp_path / "nowhere")
    assert not any((tmp_path / name).exists() for name in "abc")  # nothing half-built is left


def test_the_dataset_metadata_is_written_kept_on_rebuild_and_the_upload_runs_or_is_spelled_out(
    ensemble: dict[str, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "dist" / "kaggle"
    with pytest.raises(DaigtError, match="your-kaggle-username/dataset-slug"):
        build_package(out, "predict", OFFLINE, ensemble["ensemble"], dataset="no-owner")
    build_package(out, "predict", OFFLINE, ensemble["ensemble"], dataset="me/daigt-ensemble")
    build_package(out, "predict", OFFLINE, ensemble["ensemble"])  # a rebuild replaces the folder...
    metadata = json.loads((out / DATASET_METADATA).read_text())
    assert metadata["id"] == "me/daigt-ensemble"  # ...and keeps what the kaggle CLI needs
    monkeypatch.setenv("PATH", str(tmp_path / "no-kaggle-here"))
    uploaded, lines = upload(out)
    assert not uploaded and "pip install kaggle" in lines[0]
    assert f"kaggle datasets version -p {out} -m" in lines[1] and f"kaggle datasets create -p {out}" in lines[2]
    fake = tmp_path / "bin" / "kaggle"  # a kaggle CLI whose dataset does not exist yet: version fails, create works
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls"}\n[ "$2" = create ] || exit 1\necho created\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent) + ":/usr/bin:/bin")
    uploaded, lines = upload(out)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert uploaded and [c.split()[:2] for c in calls] == [["datasets", "version"], ["datasets", "create"]]
    assert lines[-1] == "created"


def test_the_package_command_checks_its_arguments_before_building(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        package.main(["--out", str(tmp_path / "pkg"), "--rehearse", str(tmp_path / "test.csv")])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: --rehearse {tmp_path / 'test.csv'}: no such test file\n"
    assert not (tmp_path / "pkg").exists()
    with pytest.raises(SystemExit):
        package.main(["--out", str(tmp_path / "pkg"), "--upload"])  # nothing to upload to: said before building
    assert "pass --dataset your-kaggle-username/dataset-slug" in capsys.readouterr().err
    assert not (tmp_path / "pkg").exists()


def test_the_notebook_settings_are_filled_in() -> None:
    source = notebook_source({"mode": "train", "train": ["train.csv"], "jobs": 4})
    namespace: dict = {}
    exec(compile(source, "notebook.py", "exec"), namespace)  # defines, runs nothing (not __main__)
    assert namespace["SETTINGS"] == {"mode": "train", "train": ["train.csv"], "jobs": 4}

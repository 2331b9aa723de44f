"""The entry points end to end on a tiny synthetic set: folds -> fold training -> blend -> submission."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import blend_args, listed, train_args

import blend
import train_fold
from daigt.artifacts import ModelArtifacts
from daigt.errors import DaigtError
from daigt.families.tfidf import TfidfFamily
from daigt.submission import validate_submission

pytestmark = pytest.mark.integration


def test_fold_training_writes_complete_artifacts_and_resumes(workspace: dict[str, Path], capsys) -> None:
    train_fold.main(train_args(workspace))
    model_dir = workspace["artifacts"] / "tiny_tfidf"
    oofs = [pd.read_csv(model_dir / f"fold{k}" / "oof.csv", dtype={"id": str}) for k in range(3)]
    oof = pd.concat(oofs)
    train = pd.read_csv(workspace["train"], dtype={"id": str})
    assert sorted(oof["id"]) == sorted(train["id"])  # every essay predicted exactly once, out of fold
    assert list(oof.columns) == ["id", "fold", "label", "pred"]
    assert all((o["fold"] == k).all() for k, o in enumerate(oofs))
    folds = pd.read_csv(workspace["folds"], dtype={"id": str}).set_index("id")["fold"]
    assert (oof.set_index("id")["fold"] == folds.loc[oof["id"]].to_numpy()).all()
    metrics = json.loads((model_dir / "fold0" / "metrics.json").read_text())
    assert metrics["auc"] > 0.8 and metrics["n_valid"] + metrics["n_train"] == len(train)
    test_preds = pd.read_csv(model_dir / "fold0" / "test.csv")
    assert len(test_preds) == 9 and test_preds["pred"].between(0, 1).all()
    assert isinstance(TfidfFamily.load(model_dir / "fold0" / "model"), TfidfFamily)

    def fold1_metrics() -> dict:
        return json.loads((model_dir / "fold1" / "metrics.json").read_text())

    first = fold1_metrics()
    capsys.readouterr()
    train_fold.main(train_args(workspace))  # resume: nothing to do
    assert capsys.readouterr().out.count("up to date") == 3
    assert fold1_metrics() == first
    relative = os.path.relpath(workspace["train"], Path.cwd())  # the same file, its path spelled another way
    test = f"{workspace['test'].parent}/./{workspace['test'].name}"
    train_fold.main(train_args(workspace, "--train", relative, "--test", test))
    assert capsys.readouterr().out.count("up to date") == 3  # data is compared by content, not by path
    assert fold1_metrics() == first
    shutil.rmtree(model_dir / "fold1")  # a lost fold is the only one retrained
    train_fold.main(train_args(workspace))
    assert capsys.readouterr().out.count("up to date") == 2
    assert fold1_metrics()["run_key"] == first["run_key"]
    train_fold.main(train_args(workspace, "--seed", "99"))  # a different run key retrains every fold
    changed = fold1_metrics()
    assert changed["seed"] == 99 and changed["run_key"] != first["run_key"]


def test_going_back_to_an_earlier_config_restores_its_kept_folds_until_pruned(
    workspace: dict[str, Path], capsys
) -> None:
    import runs

    model_dir = workspace["artifacts"] / "tiny_tfidf"
    train_fold.main(train_args(workspace))
    first = (model_dir / "fold1" / "metrics.json").read_text()
    train_fold.main(train_args(workspace, "--seed", "99"))  # replaces the folds; the earlier ones are kept
    kept = sorted(p.parent.name for p in (model_dir / ".kept").glob("*/fold1"))
    assert kept == [json.loads(first)["run_key"]]
    capsys.readouterr()
    train_fold.main(train_args(workspace))  # back to the first config: restored, not retrained
    assert capsys.readouterr().out.count("restored, trained before under this config") == 3
    assert (model_dir / "fold1" / "metrics.json").read_text() == first
    assert len(list((model_dir / ".kept").glob("*/fold*"))) == 3  # the seed-99 folds are kept in turn
    out = workspace["root"] / "sub" / "submission.csv"
    blend.main(blend_args(workspace, out))  # kept folders are not models
    assert set(json.loads((out.parent / "report.json").read_text())["candidates"]) >= {"tiny_tfidf"}
    capsys.readouterr()
    runs.main(["prune", "--artifacts", str(workspace["artifacts"])])
    assert capsys.readouterr().out.startswith("pruned the kept folds of 1 model(s)")
    assert not (model_dir / ".kept").exists()
    train_fold.main(train_args(workspace, "--seed", "99"))  # pruned: trained again
    assert "restored" not in capsys.readouterr().out


def test_crash_mid_fold_leaves_no_half_written_fold(workspace: dict[str, Path], monkeypatch) -> None:
    def broken_save(self, directory: Path) -> None:
        (directory / "partial.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(TfidfFamily, "save", broken_save)
    with pytest.raises(RuntimeError):
        train_fold.main(train_args(workspace))
    model_dir = workspace["artifacts"] / "tiny_tfidf"
    assert not (model_dir / "fold0").exists()
    assert not any(p.name.endswith(".tmp") for p in model_dir.iterdir())


def test_blend_writes_valid_submission_report_and_plot(workspace: dict[str, Path], capsys) -> None:
    train_fold.main(train_args(workspace))
    second = workspace["root"] / "tiny_char.yaml"
    second.write_text(workspace["model"].read_text().replace("analyzer: word", "analyzer: char_wb"))
    train_fold.main([*train_args(workspace)[:2], "--model", str(second), *train_args(workspace)[4:]])
    listed(workspace, "tiny_char")
    out = workspace["root"] / "sub" / "submission.csv"
    blend.main(blend_args(workspace, out))
    sub = pd.read_csv(out, dtype={"id": str})
    test = pd.read_csv(workspace["test"], dtype={"id": str})
    validate_submission(sub, test["id"])
    report = json.loads((out.parent / "report.json").read_text())
    assert set(report["candidates"]) == {"tiny_tfidf", "tiny_char", "rank_mean", "stacker"}
    assert all(len(c["fold_auc"]) == 3 for c in report["candidates"].values())
    assert report["picked_oof_auc"] == max(c["oof_auc"] for c in report["candidates"].values())
    assert set(report["per_source"]) == {"llm", "student"}
    assert (out.parent / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert "| stacker |" in (out.parent / "report.md").read_text()
    verdict = report["stacking"]
    singles = {n: report["candidates"][n]["oof_auc"] for n in ("tiny_tfidf", "tiny_char")}
    assert verdict["best_single"] == max(singles, key=singles.get)
    assert verdict["gain"] == pytest.approx(report["candidates"]["stacker"]["oof_auc"] - max(singles.values()))
    assert verdict["oof_rank_correlation"]["tiny_tfidf"]["tiny_tfidf"] == pytest.approx(1.0)
    assert "## Does stacking help?" in (out.parent / "report.md").read_text()
    stacked = workspace["root"] / "stacked" / "submission.csv"
    blend.main([*blend_args(workspace, stacked), "--set", "pick=stacker"])
    importance = json.loads((stacked.parent / "report.json").read_text())["stacker_importance"]
    assert abs(sum(importance.values()) - 1) < 1e-6 and (stacked.parent / "importance.png").is_file()
    top = max(importance, key=importance.get)  # report.md lists the inputs largest first
    stacker_section = (stacked.parent / "report.md").read_text().split("What the stacker")[1]
    assert f"| {top} | {importance[top]:.3f} |" in stacker_section
    ranked = workspace["root"] / "ranked" / "submission.csv"
    blend.main([*blend_args(workspace, ranked), "--set", "pick=rank_mean"])  # the stacker is not submitted...
    assert json.loads((ranked.parent / "report.json").read_text())["stacker_importance"] == {}
    assert not (ranked.parent / "importance.png").exists()  # ...so its inputs are not shown as what is used
    assert "What the stacker" not in (ranked.parent / "report.md").read_text()


def test_blend_leaves_out_partial_and_stale_models_loudly(workspace: dict[str, Path], capsys) -> None:
    train_fold.main(train_args(workspace))
    artifacts = workspace["artifacts"]
    shutil.copytree(artifacts / "tiny_tfidf", artifacts / "partial")
    shutil.rmtree(artifacts / "partial" / "fold2")
    shutil.copytree(artifacts / "tiny_tfidf", artifacts / "stale")
    oof = artifacts / "stale" / "fold0" / "oof.csv"
    pd.read_csv(oof).assign(fold=1).to_csv(oof, index=False)
    shutil.copytree(artifacts / "tiny_tfidf", artifacts / "broken")
    next((artifacts / "broken" / "fold1" / "model").iterdir()).unlink()
    listed(workspace, "partial", "stale", "broken")
    out = workspace["root"] / "submission.csv"
    blend.main(blend_args(workspace, out))
    err = capsys.readouterr().err
    assert "'partial' left out" in err
    hint = f"python src/train_fold.py --fold all --model partial --train {workspace['train']}"
    assert f"folds [2] missing ({hint})" in err
    assert "'stale' left out" in err and "fold0/oof.csv: changed since it was written" in err
    assert "'broken' left out" in err and "missing; retrain it with python src/train_fold.py --fold 1" in err
    excluded = json.loads((workspace["root"] / "report.json").read_text())["excluded"]
    assert set(excluded) == {"partial", "stale", "broken"}
    next((artifacts / "tiny_tfidf" / "fold1" / "model").iterdir()).unlink()
    train_fold.main(train_args(workspace))  # a damaged fold is not "up to date": it is retrained
    assert "fold 1: " in capsys.readouterr().err and (artifacts / "tiny_tfidf" / "fold1").is_dir()
    ModelArtifacts(artifacts, "tiny_tfidf").fold(1).verified()


def test_blend_refuses_folds_trained_on_texts_that_have_since_changed(workspace: dict[str, Path], capsys) -> None:
    """Same ids, new texts: the folds' ids still match, but the models learned other essays."""
    train_fold.main(train_args(workspace))
    frame = pd.read_csv(workspace["train"])
    frame.assign(text=frame["text"] + " edited").to_csv(workspace["train"], index=False)
    out = workspace["root"] / "submission.csv"
    with pytest.raises(SystemExit) as stop:
        blend.main(blend_args(workspace, out))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "trained on other training data" in err and "Traceback" not in err
    assert not out.exists()


def test_bad_input_exits_2_with_one_line_and_writes_nothing(workspace: dict[str, Path], capsys) -> None:
    workspace["train"].write_text("id,text,generated\na,fine,1\nb,fine too,2\n")
    with pytest.raises(SystemExit) as exit_info:
        train_fold.main(train_args(workspace))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "row 2, column 'generated': label 2 is outside [0, 1]" in err
    assert not workspace["folds"].exists() and not workspace["artifacts"].exists()


def test_blend_refuses_without_models_and_submission_validation_catches_errors(
    workspace: dict[str, Path], capsys
) -> None:
    out = workspace["root"] / "submission.csv"
    with pytest.raises(SystemExit):
        blend.main(blend_args(workspace, out))
    assert "no complete model" in capsys.readouterr().err and not out.exists()
    ids = pd.Series(["a", "b"])
    good = pd.DataFrame({"id": ["a", "b"], "generated": [0.2, 0.9]})
    validate_submission(good, ids)
    for bad, message in [
        (good.rename(columns={"generated": "pred"}), "columns"),
        (good.iloc[::-1], "ids differ"),
        (good.assign(generated=[0.2, None]), "NaN"),
        (good.assign(generated=[0.2, 1.5]), r"\[0, 1\]"),
    ]:
        with pytest.raises(DaigtError, match=message):
            validate_submission(bad, ids)
    sample = workspace["root"] / "sample.csv"
    pd.DataFrame({"id": ["a", "c"], "generated": 0.5}).to_csv(sample, index=False)
    with pytest.raises(DaigtError, match="1 missing"):
        validate_submission(good, ids, sample)


def test_models_trained_side_by_side_equal_models_trained_in_a_row(
    workspace: dict[str, Path], capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--jobs 2 runs each model in its own process; the artifacts are the ones a sequential run writes, and
    the n-gram LM family goes through the real entry points into the stacker. A worker left free computes the
    blend's style features, which the blend then reads instead of computing."""
    import yaml

    from daigt import stylometry

    lm = workspace["root"] / "tiny_lm.yaml"
    lm.write_text(yaml.safe_dump({"family": "ngram_lm", "seed": 1, "params": {"order": 2}}))
    config = yaml.safe_load(workspace["project"].read_text())
    config["models"] = [str(workspace["model"]), str(lm)]
    workspace["project"].write_text(yaml.safe_dump(config))
    common = ["--fold", "all", "--model", "all", "--config", str(workspace["project"]), "--no-progress"]
    side_by_side, in_a_row = workspace["root"] / "parallel", workspace["root"] / "sequential"
    train_fold.main([*common, "--artifacts", str(side_by_side), "--jobs", "2"])
    printed = capfd.readouterr().out  # the workers say their own lines, as each fold is written
    assert printed.count("[tiny_lm] fold") == 3 and printed.count("[tiny_tfidf] fold") == 3
    assert "[style] features of" in printed and "[blend]" not in printed  # only the blend speaks as the blend
    assert list((workspace["root"] / "folds").glob("style-*.npz"))
    train_fold.main([*common, "--artifacts", str(in_a_row)])
    for model in ("tiny_tfidf", "tiny_lm"):
        for k in range(3):
            for name in ("oof.csv", "test.csv"):
                parallel = pd.read_csv(side_by_side / model / f"fold{k}" / name)
                pd.testing.assert_frame_equal(parallel, pd.read_csv(in_a_row / model / f"fold{k}" / name))
    out = workspace["root"] / "sub" / "submission.csv"
    compute = stylometry.style_features

    def nothing_to_compute(texts: pd.Series, *args: object) -> pd.DataFrame:
        assert texts.empty, f"the blend computed the style of {len(texts)} essays the cache holds"
        return compute(texts, *args)

    monkeypatch.setattr(stylometry, "style_features", nothing_to_compute)
    blend.main([*blend_args(workspace, out)[:2], "--artifacts", str(side_by_side), *blend_args(workspace, out)[4:]])
    report = json.loads((out.parent / "report.json").read_text())
    assert {"tiny_tfidf", "tiny_lm", "stacker"} <= set(report["candidates"])
    capfd.readouterr()
    with pytest.raises(SystemExit) as stop:
        train_fold.main([*common, "--artifacts", str(side_by_side), "--jobs", "0"])
    assert stop.value.code == 2 and "--jobs 0: give 1 or more" in capfd.readouterr().err


def test_every_blend_is_recorded_and_runs_py_lists_and_diffs_them(workspace: dict[str, Path], capsys) -> None:
    import runs

    train_fold.main(train_args(workspace))
    out = workspace["root"] / "sub" / "submission.csv"
    blend.main(blend_args(workspace, out))
    cfg = yaml.safe_load((Path(blend.__file__).parents[1] / "configs" / "blend.yaml").read_text())
    cfg["stacker"]["num_leaves"] = 7
    other = workspace["root"] / "blend.yaml"
    other.write_text(yaml.safe_dump(cfg))
    blend.main([*blend_args(workspace, out), "--blend-config", str(other)])
    history = workspace["root"] / "runs" / "history.jsonl"
    first, second = (json.loads(line) for line in history.read_text().splitlines())
    assert first["run_id"] != second["run_id"] and set(first["models"]) == {"tiny_tfidf"}
    capsys.readouterr()
    runs.main(["--history", str(history), "--sort", "oof"])
    listing = capsys.readouterr().out
    assert first["run_id"] in listing and second["run_id"] in listing and f"| {first['picked']} |" in listing
    runs.main(["diff", first["run_id"], second["run_id"], "--history", str(history)])
    assert "blend: stacker.num_leaves: 15 -> 7" in capsys.readouterr().out
    assert first["data"] == second["data"] and first["data"]["files"] == ["train.csv"]
    train_fold.main(train_args(workspace, "--sample", "60"))  # the same file, other rows: it must read otherwise
    blend.main([*blend_args(workspace, out), "--sample", "60"])
    third = json.loads(history.read_text().splitlines()[2])
    assert third["data"]["rows"] == 60 and third["data"]["fingerprint"] != first["data"]["fingerprint"]
    capsys.readouterr()
    runs.main(["diff", first["run_id"], third["run_id"], "--history", str(history)])
    said = capsys.readouterr().out
    assert f"data: train.csv ({first['data']['rows']:,} rows" in said and "-> train.csv sample 60 (60 rows" in said


def test_stacker_attack_scores_each_held_out_fold_attacked_and_the_stacker_trains_on_it(
    workspace: dict[str, Path], monkeypatch
) -> None:
    import daigt.stacking as stacking

    config = yaml.safe_load(workspace["project"].read_text())
    config["stacker_attack"] = "configs/augment/stacker_attack.yaml"
    workspace["project"].write_text(yaml.safe_dump(config))
    train_fold.main(train_args(workspace))
    fold = workspace["artifacts"] / "tiny_tfidf" / "fold0"
    clean, hit = pd.read_csv(fold / "oof.csv"), pd.read_csv(fold / "oof_attacked.csv")
    assert hit["id"].tolist() == clean["id"].tolist() and not np.allclose(hit["pred"], clean["pred"])
    rows: list[int] = []
    real = stacking.nested_stacker
    monkeypatch.setattr(stacking, "nested_stacker", lambda x, *rest: rows.append(len(x)) or real(x, *rest))
    blend.main(blend_args(workspace, workspace["root"] / "sub" / "submission.csv"))
    n_train = sum(len(pd.read_csv(f)) for f in (workspace["artifacts"] / "tiny_tfidf").glob("fold*/oof.csv"))
    assert rows == [2 * n_train]  # clean OOF rows and their attacked copies


def test_a_misspelled_pick_fallback_stops_blend_with_one_line_before_any_stacking(
    workspace: dict[str, Path], capsys, monkeypatch
) -> None:
    import daigt.blending

    train_fold.main(train_args(workspace))
    cfg = yaml.safe_load((Path(blend.__file__).parents[1] / "configs" / "blend.yaml").read_text())
    cfg["pick_fallback"] = "rank_maen"
    bad = workspace["root"] / "blend.yaml"
    bad.write_text(yaml.safe_dump(cfg))

    def stacking(*args, **kwargs):
        raise AssertionError("the stacker ran before the config was checked")

    monkeypatch.setattr(daigt.blending, "build_candidates", stacking)
    out = workspace["root"] / "sub" / "submission.csv"
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        blend.main([*blend_args(workspace, out), "--blend-config", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and err[-1].startswith("error: pick_fallback: 'rank_maen' is neither best_oof")
    assert not out.exists()


def test_set_overrides_are_kept_with_the_folds_and_in_the_history_and_diff_names_them(
    workspace: dict[str, Path], capsys
) -> None:
    import runs

    out = workspace["root"] / "sub" / "submission.csv"
    train_fold.main(train_args(workspace))
    blend.main(blend_args(workspace, out))
    train_fold.main(train_args(workspace, "--set", "params.vectorizer.min_df=2"))
    fold = json.loads((workspace["artifacts"] / "tiny_tfidf" / "fold0" / "metrics.json").read_text())
    assert fold["overrides"] == ["params.vectorizer.min_df=2"]
    blend.main([*blend_args(workspace, out), "--set", "decisions.target_fpr=0.02"])
    history = workspace["root"] / "runs" / "history.jsonl"
    first, second = (json.loads(line) for line in history.read_text().splitlines())
    assert first["overrides"] == {}
    assert second["overrides"] == {"tiny_tfidf": ["params.vectorizer.min_df=2"], "blend": ["decisions.target_fpr=0.02"]}
    capsys.readouterr()
    runs.main(["diff", first["run_id"], second["run_id"], "--history", str(history)])
    said = capsys.readouterr().out
    assert "model tiny_tfidf: params.vectorizer.min_df:" in said and "blend: decisions.target_fpr: 0.01 -> 0.02" in said
    given = "{'blend': ['decisions.target_fpr=0.02'], 'tiny_tfidf': ['params.vectorizer.min_df=2']}"
    assert f"--set: none -> {given}" in said


@pytest.mark.parametrize(("n_test", "warned"), [(9, False), (30, True)])
def test_blend_warns_of_a_far_test_set_only_when_it_has_enough_essays_to_tell(
    workspace: dict[str, Path], capsys, n_test: int, warned: bool
) -> None:
    """Kaggle's 3-row placeholder is not 'far from train'; thirty essays of another kind of writing are."""
    import random

    rng = random.Random(0)
    words = [
        "quarterly",
        "revenue",
        "shareholders",
        "dividend",
        "merger",
        "equity",
        "ticker",
        "bond",
        "yield",
        "portfolio",
    ]
    other = [" ".join(rng.choice(words) for _ in range(60)) + "." for _ in range(n_test)]
    pd.DataFrame({"id": [f"x{i}" for i in range(n_test)], "text": other}).to_csv(workspace["test"], index=False)
    train_fold.main(train_args(workspace))
    capsys.readouterr()
    blend.main(blend_args(workspace, workspace["root"] / "sub" / "submission.csv"))
    assert ("the test set is far from the training essays" in capsys.readouterr().err) is warned

"""Transformer families through the real entry point on tiny models: plain, DeepSpeed ZeRO-2/3, two ranks,
resume after kill -9, reload, and stacking in blend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import blend_args

import blend
import train_fold
from daigt.config import REPO_ROOT
from daigt.families.transformer import CausalLMFamily, EncoderFamily

pytestmark = pytest.mark.integration
TRAIN_FOLD = str(REPO_ROOT / "src" / "train_fold.py")


def model_config(
    ws: dict[str, Path], name: str, family: str, pretrained: Path, extra: dict[str, Any] | None = None, **params: Any
) -> Path:
    base = {"pretrained": str(pretrained), "max_length": 64, "batch_size": 8, "epochs": 2, "lr": 3.0e-3}
    path = ws["root"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"family": family, "seed": 1, "params": {**base, **params}, **(extra or {})}))
    return path


def fold_args(ws: dict[str, Path], model: Path, fold: str = "0", artifacts: Path | None = None) -> list[str]:
    return [
        "--fold",
        fold,
        "--model",
        str(model),
        "--config",
        str(ws["project"]),
        "--artifacts",
        str(artifacts or ws["artifacts"]),
        "--no-progress",
    ]


def oof(artifacts: Path, name: str, fold: int = 0) -> pd.DataFrame:
    return pd.read_csv(artifacts / name / f"fold{fold}" / "oof.csv", dtype={"id": str})


def metrics(artifacts: Path, name: str, fold: int = 0) -> dict[str, Any]:
    return json.loads((artifacts / name / f"fold{fold}" / "metrics.json").read_text())


def run_script(args: list[str], launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [*(launcher or [sys.executable]), TRAIN_FOLD, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def plain_deberta(workspace: dict[str, Path], tiny_models: dict[str, Path]) -> Path:
    """A tiny DeBERTa fold 0 trained without DeepSpeed: the reference the other engines must match."""
    model = model_config(workspace, "deberta", "encoder", tiny_models["deberta"], logging={"every": 1})
    train_fold.main(fold_args(workspace, model))
    return model


def step_losses(artifacts: Path, name: str) -> np.ndarray:
    curves = json.loads((artifacts / name / "fold0" / "model" / "curves.json").read_text())
    return np.array([point["loss"] for point in curves["train"]])


def test_encoder_fold_writes_artifacts_that_reload_to_the_same_predictions(
    workspace: dict[str, Path], plain_deberta: Path
) -> None:
    predictions = oof(workspace["artifacts"], "deberta")
    m = metrics(workspace["artifacts"], "deberta")
    assert m["engine"] == "torch" and m["auc"] > 0.8 and m["optimizer_steps"] == 20
    reloaded = EncoderFamily.load(workspace["artifacts"] / "deberta" / "fold0" / "model")
    train = pd.read_csv(workspace["train"], dtype={"id": str}).set_index("id")
    frame = pd.DataFrame({"text": train.loc[predictions["id"], "text"].to_numpy()})
    assert np.allclose(reloaded.predict(frame), predictions["pred"], atol=1e-5)


def test_causal_lm_lora_saves_only_the_adapter_and_head(workspace: dict[str, Path], tiny_models) -> None:
    from safetensors.torch import load_file

    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]}
    model = model_config(workspace, "mistral", "causal_lm", tiny_models["mistral"], lora=lora, prompt_suffix=" ok")
    train_fold.main(fold_args(workspace, model))
    model_dir = workspace["artifacts"] / "mistral" / "fold0" / "model"
    saved = load_file(str(model_dir / "weights.safetensors"))
    assert saved and all("lora_" in name or ".score." in name for name in saved)
    reloaded = CausalLMFamily.load(model_dir)
    assert reloaded.tokenizer.padding_side == "left"
    predictions = oof(workspace["artifacts"], "mistral")
    train = pd.read_csv(workspace["train"], dtype={"id": str}).set_index("id")
    frame = pd.DataFrame({"text": train.loc[predictions["id"], "text"].to_numpy()})
    assert np.allclose(reloaded.predict(frame), predictions["pred"], atol=1e-5)


@pytest.mark.parametrize("zero", ["zero2", "zero3", "zero2_offload", "zero3_offload"])
def test_deepspeed_zero_trains_the_same_model_as_plain_torch(
    workspace: dict[str, Path], plain_deberta: Path, zero: str, tmp_path: Path
) -> None:
    artifacts = tmp_path / f"artifacts_{zero}"
    run_script(
        [*fold_args(workspace, plain_deberta, artifacts=artifacts), "--deepspeed", f"configs/deepspeed/{zero}.json"]
    )
    assert metrics(artifacts, "deberta")["engine"] == f"deepspeed-{zero.removesuffix('_offload')}"
    ds, plain = oof(artifacts, "deberta"), oof(workspace["artifacts"], "deberta")
    assert (ds["id"] == plain["id"]).all()
    assert np.allclose(ds["pred"], plain["pred"], atol=2e-3)
    # the same trajectory, step by step: every one of the 20 optimizer steps' loss within 1e-3 of plain torch
    ds_losses, plain_losses = step_losses(artifacts, "deberta"), step_losses(workspace["artifacts"], "deberta")
    assert len(ds_losses) == len(plain_losses) == 20
    assert np.allclose(ds_losses, plain_losses, atol=1e-3), np.abs(ds_losses - plain_losses).max()
    reloaded = EncoderFamily.load(artifacts / "deberta" / "fold0" / "model")  # ZeRO-3 shards were gathered
    assert reloaded.predict(pd.DataFrame({"text": ["some essay text."]})).shape == (1,)


def test_causal_lm_lora_under_zero3_saves_a_loadable_adapter(
    workspace: dict[str, Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]}
    model = model_config(workspace, "mistral", "causal_lm", tiny_models["mistral"], lora=lora, precision="bf16")
    run_script([*fold_args(workspace, model), "--deepspeed", "configs/deepspeed/zero3.json"])
    assert metrics(workspace["artifacts"], "mistral")["engine"] == "deepspeed-zero3"
    reloaded = CausalLMFamily.load(workspace["artifacts"] / "mistral" / "fold0" / "model")
    assert reloaded.predict(pd.DataFrame({"text": ["an essay.", "another, longer essay text."]})).shape == (2,)


def test_two_processes_on_loopback_write_one_set_of_artifacts_that_blend_stacks(
    workspace: dict[str, Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    model = model_config(
        workspace, "deberta2", "encoder", tiny_models["deberta"], deepspeed="configs/deepspeed/zero2.json"
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"]
    run_script([*fold_args(workspace, model, fold="all"), "--deepspeed", "configs/deepspeed/zero2.json"], torchrun)
    m = metrics(workspace["artifacts"], "deberta2")
    assert m["world_size"] == 2 and m["engine"] == "deepspeed-zero2"
    train_fold.main(fold_args(workspace, workspace["model"], fold="all"))  # the tiny TF-IDF model beside it
    config = yaml.safe_load(workspace["project"].read_text())  # blend blends what models: lists
    workspace["project"].write_text(yaml.safe_dump({**config, "models": [*config["models"], "deberta2"]}))
    out = tmp_path / "submission.csv"
    blend.main(blend_args(workspace, out))
    report = json.loads((out.parent / "report.json").read_text())
    assert {"deberta2", "tiny_tfidf", "stacker"} <= set(report["candidates"])
    assert len(pd.read_csv(out)) == 9


def test_two_ranks_train_the_model_one_process_trains_with_grad_accum_two(
    workspace: dict[str, Path], tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """Rank r takes micro-batches r, r+2, ... and DeepSpeed averages the two gradients: the same update as one
    process accumulating micro-batches 2i and 2i+1. Step losses (each the step's mean over micro-batches and
    ranks) and OOF predictions must agree; only the order of floating-point sums differs."""
    pretrained = tiny_models["deberta_no_dropout"]
    single = model_config(workspace, "pair", "encoder", pretrained, grad_accum=2, logging={"every": 1})
    run_script([*fold_args(workspace, single, artifacts=tmp_path / "one")])
    two = model_config(workspace, "pair", "encoder", pretrained, logging={"every": 1})
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"]
    run_script([*fold_args(workspace, two, artifacts=tmp_path / "two"), "--deepspeed", "configs/deepspeed/zero2.json"],
               torchrun)  # fmt: skip
    assert metrics(tmp_path / "two", "pair")["world_size"] == 2
    assert metrics(tmp_path / "one", "pair")["world_size"] == 1
    one_losses, two_losses = step_losses(tmp_path / "one", "pair"), step_losses(tmp_path / "two", "pair")
    assert len(one_losses) == len(two_losses) == 10  # 80 training rows / 8 per micro-batch x 2 epochs / 2
    assert np.allclose(two_losses, one_losses, atol=1e-3), np.abs(two_losses - one_losses).max()
    assert np.ptp(one_losses) > 1e-3  # the losses moved: the comparison is over a real trajectory
    one, two_ranks = oof(tmp_path / "one", "pair"), oof(tmp_path / "two", "pair")
    assert (one["id"] == two_ranks["id"]).all()
    assert np.allclose(two_ranks["pred"], one["pred"], atol=2e-3), np.abs(two_ranks["pred"] - one["pred"]).max()


@pytest.mark.parametrize("engine", [[], ["--deepspeed", "configs/deepspeed/zero2.json"]], ids=["torch", "zero2"])
def test_a_fold_killed_mid_training_resumes_to_the_same_predictions(
    workspace: dict[str, Path], tiny_models: dict[str, Path], tmp_path: Path, engine: list[str]
) -> None:
    model = model_config(workspace, "resumable", "encoder", tiny_models["deberta"], epochs=6, checkpoint_every=3)
    run_script([*fold_args(workspace, model, artifacts=tmp_path / "uninterrupted"), *engine])

    args = [*fold_args(workspace, model), *engine]
    proc = subprocess.Popen([sys.executable, TRAIN_FOLD, *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    latest = workspace["artifacts"] / "resumable" / ".work-fold0" / "checkpoint" / "latest_step"
    deadline = time.monotonic() + 300
    while not latest.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert latest.exists(), "the run ended before its first checkpoint; nothing was interrupted"
    assert not (workspace["artifacts"] / "resumable" / "fold0").exists()  # no half-written fold

    resumed = run_script(args)
    assert "resumed from checkpoint" in resumed.stdout
    assert metrics(workspace["artifacts"], "resumable")["resumed_from_step"] >= 3
    pd.testing.assert_frame_equal(
        oof(workspace["artifacts"], "resumable"), oof(tmp_path / "uninterrupted", "resumable")
    )
    assert not latest.parent.parent.exists()  # the work folder is gone once the fold is written


def test_per_epoch_augmentation_is_deterministic_and_changes_training(
    workspace: dict[str, Path], plain_deberta: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("seed: 3\nops:\n  - {op: char_typo, p: 1.0, intensity: 0.3}\n")
    each_epoch = {"augment": {"each_epoch": str(recipe)}}
    model = model_config(workspace, "deberta", "encoder", tiny_models["deberta"], extra=each_epoch)
    runs = [tmp_path / "a", tmp_path / "b"]
    for artifacts in runs:
        train_fold.main(fold_args(workspace, model, artifacts=artifacts))
    first, second = (oof(a, "deberta") for a in runs)
    pd.testing.assert_frame_equal(first, second)
    assert not np.allclose(first["pred"], oof(workspace["artifacts"], "deberta")["pred"], atol=1e-4)


def test_evaluation_logs_curves_and_keeps_the_best_weights(workspace: dict[str, Path], tiny_models) -> None:
    watch = {"fraction": 0.2, "every": 2, "patience": None, "keep_best": True}
    model = model_config(workspace, "watched", "encoder", tiny_models["deberta"], evaluation=watch,
                         logging={"every": 1, "tensorboard": True})  # fmt: skip
    train_fold.main(fold_args(workspace, model))
    folder = workspace["artifacts"] / "watched" / "fold0"
    m, curves = metrics(workspace["artifacts"], "watched"), json.loads((folder / "model" / "curves.json").read_text())
    steps = m["optimizer_steps"]
    assert [p["step"] for p in curves["train"]] == list(range(1, steps + 1))  # logging.every 1
    assert [p["step"] for p in curves["validation"]] == sorted({*range(2, steps + 1, 2), steps})
    best = max(curves["validation"], key=lambda p: p["auc"])
    assert m["validation_auc_best"] == pytest.approx(best["auc"], abs=1e-6)
    assert m["kept_step"] == m["best_step"] == best["step"] == curves["best"]["step"]
    assert m["validation_rows"] > 0 and m["stopped_early_at_step"] is None
    assert (folder / "model" / "training_curve.png").stat().st_size > 0
    assert any((folder / "model" / "tensorboard").glob("events.out.tfevents.*"))
    # the kept weights are the ones saved and the ones that wrote the OOF predictions
    reloaded = EncoderFamily.load(folder / "model")
    predictions = oof(workspace["artifacts"], "watched")
    train = pd.read_csv(workspace["train"], dtype={"id": str}).set_index("id")
    frame = pd.DataFrame({"text": train.loc[predictions["id"], "text"].to_numpy()})
    assert np.allclose(reloaded.predict(frame), predictions["pred"], atol=1e-5)


def test_wandb_gets_every_point_when_enabled(workspace: dict[str, Path], tiny_models, monkeypatch) -> None:
    import types

    calls: list[tuple[str, Any]] = []
    run = types.SimpleNamespace(
        log=lambda data, step: calls.append(("log", step)), finish=lambda: calls.append(("end", 0))
    )
    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)) or run)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    model = model_config(workspace, "wb", "encoder", tiny_models["deberta"], epochs=1,
                         logging={"every": 1, "tensorboard": False, "wandb": True})  # fmt: skip
    train_fold.main(fold_args(workspace, model))
    steps = metrics(workspace["artifacts"], "wb")["optimizer_steps"]
    assert calls[0][0] == "init" and calls[-1] == ("end", 0)
    assert [step for kind, step in calls if kind == "log"] == list(range(1, steps + 1))
    assert not (workspace["artifacts"] / "wb" / "fold0" / "model" / "tensorboard").exists()


def test_wandb_enabled_but_not_installed_is_one_line(
    workspace: dict[str, Path], tiny_models, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ModuleNotFoundError
    model = model_config(workspace, "wb", "encoder", tiny_models["deberta"], logging={"wandb": True})
    with pytest.raises(SystemExit):
        train_fold.main(fold_args(workspace, model))
    assert capsys.readouterr().err.strip().endswith("logging.wandb: true needs the wandb package: pip install wandb")


def test_lora_folds_of_one_base_share_it_and_score_as_loaded_one_by_one(
    workspace: dict[str, Path], tiny_models
) -> None:
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]}
    model = model_config(workspace, "mistral", "causal_lm", tiny_models["mistral"], lora=lora, epochs=1)
    for fold in ("0", "1"):
        train_fold.main(fold_args(workspace, model, fold))
    dirs = [workspace["artifacts"] / "mistral" / f"fold{k}" / "model" for k in (0, 1)]
    shared = CausalLMFamily.load_folds(dirs)
    alone = [CausalLMFamily.load(d) for d in dirs]
    assert shared[0].model is shared[1].model  # one base in memory, two adapters
    assert alone[0].model is not alone[1].model
    frame = pd.DataFrame({"text": pd.read_csv(workspace["test"])["text"]})
    for _ in range(2):  # back and forth: each fold's adapter is swapped in before it scores
        for together, single in zip(shared, alone, strict=True):
            assert np.allclose(together.predict(frame), single.predict(frame), atol=1e-6)
    assert not np.allclose(alone[0].predict(frame), alone[1].predict(frame), atol=1e-4)  # the folds do differ


def test_evaluation_can_watch_the_held_out_fold_as_the_winning_solutions_did(
    workspace: dict[str, Path], tiny_models
) -> None:
    watch = {"rows": "held_out_fold", "every": 5, "keep_best": True}
    model = model_config(workspace, "on_fold", "encoder", tiny_models["deberta"], evaluation=watch, epochs=1)
    train_fold.main(fold_args(workspace, model))
    m = metrics(workspace["artifacts"], "on_fold")
    assert m["validation_rows"] == m["n_valid"]  # every held-out row watched, none taken from training
    assert m["n_train"] + m["n_valid"] == len(pd.read_csv(workspace["train"]))
    # the kept weights wrote the OOF predictions, so the best watched AUC is the fold's OOF AUC
    assert m["validation_auc_best"] == pytest.approx(m["auc"], abs=1e-6)


@pytest.mark.parametrize(("base", "tiny"), [("deberta_v3_large", "deberta"), ("mistral_7b_lora", "mistral")])
def test_the_real_gpu_configs_shrunk_train_a_few_steps_on_cpu(
    workspace: dict[str, Path], tiny_models: dict[str, Path], base: str, tiny: str
) -> None:
    """configs/models/<base>.yaml as shipped (DeepSpeed ZeRO-2, bf16, gradient checkpointing, head+tail
    truncation, evaluation, LoRA for Mistral), only the model and the sizes shrunk through a `base:` variant."""
    shrunk = {"pretrained": str(tiny_models[tiny]), "max_length": 64, "batch_size": 4, "eval_batch_size": 8,
              "grad_accum": 1, "max_steps": 4, "checkpoint_every": 0,
              "evaluation": {"fraction": 0.2, "every": 2}}  # fmt: skip
    path = workspace["root"] / f"{base}_shrunk.yaml"
    path.write_text(yaml.safe_dump({"base": base, "params": shrunk}))
    run_script(fold_args(workspace, path))
    m = metrics(workspace["artifacts"], f"{base}_shrunk")
    assert m["engine"] == "deepspeed-zero2" and m["optimizer_steps"] == 4 and m["best_step"] in (2, 4)
    resolved = yaml.safe_load((workspace["artifacts"] / f"{base}_shrunk" / "fold0" / "config.yaml").read_text())
    shipped = yaml.safe_load((REPO_ROOT / "configs" / "models" / f"{base}.yaml").read_text())["params"]
    kept = ("precision", "gradient_checkpointing", "truncation", "lr", "deepspeed", "lora", "prompt_suffix")
    for key in (k for k in kept if k in shipped):
        assert resolved["params"][key] == shipped[key], key  # everything but the sizes is the real recipe

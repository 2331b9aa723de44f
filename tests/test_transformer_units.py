"""Token plumbing and loss/optimizer pieces of the transformer families (fast, tiny tokenizers)."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from daigt.errors import DaigtError
from daigt.families.transformer import EncoderFamily, from_pretrained
from daigt.hf.batches import (
    collate,
    encode_texts,
    length_grouped_batches,
    shard,
    sorted_batches,
    special_template,
    truncate,
)


def test_truncation_keeps_head_tail_or_both() -> None:
    ids = list(range(10))
    assert truncate(ids, 4, "head") == [0, 1, 2, 3]
    assert truncate(ids, 4, "tail") == [6, 7, 8, 9]
    assert truncate(ids, 4, "head_tail") == [0, 1, 8, 9]
    assert truncate(ids, 20, "head_tail") == ids
    with pytest.raises(DaigtError, match="truncation"):
        truncate(ids, 4, "middle")


def test_encoding_wraps_every_essay_in_the_tokenizers_specials(tiny_models: dict[str, Path], essays) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["deberta"])
    before, after = special_template(tokenizer)
    assert before == [tokenizer.cls_token_id] and after == [tokenizer.sep_token_id]
    long_text = " ".join(essays["text"].head(5))
    encoded = encode_texts(tokenizer, [long_text, "short."], max_length=32, truncation="head_tail")
    assert (
        len(encoded[0]) == 32 and encoded[0][0] == tokenizer.cls_token_id and encoded[0][-1] == tokenizer.sep_token_id
    )
    full = tokenizer(long_text, add_special_tokens=False)["input_ids"]
    assert encoded[0][1:16] == full[:15] and encoded[0][16:-1] == full[-15:]
    assert len(encoded[1]) < 32


def test_prompt_suffix_follows_the_essay_within_max_length(tiny_models: dict[str, Path], essays) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["mistral"])
    suffix = " overall it is"
    suffix_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"]
    (encoded,) = encode_texts(tokenizer, [essays["text"].iloc[0] * 5], max_length=40, suffix=suffix)
    _, after = special_template(tokenizer)
    assert len(encoded) == 40
    assert encoded[len(encoded) - len(after) - len(suffix_ids) : len(encoded) - len(after)] == suffix_ids
    with pytest.raises(DaigtError, match="no room"):
        encode_texts(tokenizer, ["x"], max_length=len(suffix_ids), suffix=suffix)


def test_length_grouped_batches_cover_every_row_once_and_cut_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 500, size=1000)

    def batches(seed: int, group: bool) -> list[np.ndarray]:
        return length_grouped_batches(lengths, 16, np.random.default_rng(seed), group=group)

    grouped = batches(1, True)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(1000))
    assert all(len(b) <= 16 for b in grouped)
    assert [b.tolist() for b in grouped] == [b.tolist() for b in batches(1, True)]  # deterministic
    assert [b.tolist() for b in grouped] != [b.tolist() for b in batches(2, True)]

    def padded_tokens(bs: list[np.ndarray]) -> int:
        return sum(int(lengths[b].max()) * len(b) for b in bs)

    assert padded_tokens(grouped) < 0.8 * padded_tokens(batches(1, False))


def test_sorted_batches_and_shards() -> None:
    batches = sorted_batches([3, 9, 1, 7, 5], 2)
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]
    parts = [shard(batches, r, 2) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == 2  # the short list is cycled so ranks stay in lock-step
    assert {i for p in parts for b in p for i in b.tolist()} == {0, 1, 2, 3, 4}


def test_collate_pads_on_the_requested_side() -> None:
    right = collate([[5, 6, 7], [8]], pad_id=0, side="right")
    left = collate([[5, 6, 7], [8]], pad_id=0, side="left")
    assert right["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_ranking_loss_only_bites_when_pairs_are_misordered(tiny_models: dict[str, Path]) -> None:
    family = EncoderFamily(
        {"pretrained": str(tiny_models["deberta"]), "loss": {"bce": 0.0, "ranking": 1.0, "margin": 0.5}}, seed=0
    )
    target = torch.tensor([1.0, 0.0, 0.7])
    assert family._loss(torch.tensor([3.0, 0.0, 1.0]), target).item() == 0.0
    assert family._loss(torch.tensor([0.0, 3.0, 1.0]), target).item() > 1.0


def test_layerwise_lr_decay_gives_lower_layers_smaller_steps(tiny_models: dict[str, Path]) -> None:
    family = EncoderFamily({"pretrained": str(tiny_models["deberta"]), "lr": 1.0, "layerwise_lr_decay": 0.5}, seed=0)
    family.tokenizer = family._build_tokenizer()
    model = family._build_model()
    lr_of = {id(p): g["lr"] for g in family._parameter_groups(model) for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["classifier.weight"])] == 1.0
    assert lr_of[id(named["deberta.encoder.layer.1.attention.self.query_proj.weight"])] == 0.5
    assert lr_of[id(named["deberta.encoder.layer.0.attention.self.query_proj.weight"])] == 0.25
    assert lr_of[id(named["deberta.embeddings.word_embeddings.weight"])] == 0.125


def test_missing_weights_offline_name_the_model_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DaigtError, match=r"no-such-org/no-such-model.*hf download no-such-org/no-such-model"):
        from_pretrained(AutoTokenizer, "no-such-org/no-such-model")
    with pytest.raises(DaigtError, match="pip install --no-deps no-such-package"):
        from_pretrained(AutoTokenizer, "pkg:no_such_package")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_fp16_scales_the_loss(
    precision: str, tiny_models: dict[str, Path], essays, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp16 (GPUs without bf16: T4, P100) goes through autocast and a dynamic loss scaler; bf16 needs none."""
    from daigt.families import FitContext

    scaled: list[float] = []
    real_scale = torch.amp.GradScaler.scale
    monkeypatch.setattr(
        torch.amp.GradScaler, "scale", lambda self, x: scaled.append(self.get_scale()) or real_scale(self, x)
    )
    params = {"pretrained": str(tiny_models["deberta"]), "max_length": 32, "batch_size": 8, "precision": precision}
    family = EncoderFamily(params, seed=0)
    train = essays.rename(columns={"generated": "label"}).assign(label=lambda f: f["label"].astype(float))
    family.fit(train, FitContext(progress=False))
    preds = family.predict(train)
    assert np.isfinite(preds).all() and preds.std() > 0
    assert (len(scaled) > 0) == (precision == "fp16")  # the scaler ran for fp16 only
    assert (
        family._autocast(torch.device("cpu")).fast_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    )


def test_an_unknown_precision_is_a_config_error(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(DaigtError, match="precision"):
        EncoderFamily({"pretrained": str(tiny_models["deberta"]), "precision": "fp8"}, seed=0)


def test_a_gpu_recipe_on_cpu_warns_before_any_work(tiny_models: dict[str, Path], capsys, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine, wherever this runs
    gpu = EncoderFamily({"pretrained": str(tiny_models["deberta"]), "deepspeed": "configs/deepspeed/zero3.json"}, 0)
    gpu._warn_if_meant_for_gpu()
    assert "meant for a GPU (deepspeed: configs/deepspeed/zero3.json)" in capsys.readouterr().err
    EncoderFamily({"pretrained": str(tiny_models["deberta"])}, 0)._warn_if_meant_for_gpu()
    assert capsys.readouterr().err == ""  # a tiny plain config is not


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: 4-bit QLoRA (bitsandbytes) runs on GPU only")
def test_qlora_4bit_trains_and_reloads_on_the_same_quantized_base(
    tiny_models: dict[str, Path], essays, tmp_path
) -> None:
    """The 4-bit path (QLoRA: nf4, double quantisation) needs CUDA and bitsandbytes."""
    from daigt.families import FitContext
    from daigt.families.transformer import CausalLMFamily

    params = {"pretrained": str(tiny_models["mistral"]), "quantization": "4bit", "lora": {"r": 4, "alpha": 8},
              "max_length": 32, "precision": "bf16"}  # fmt: skip
    family = CausalLMFamily(params, seed=0)
    train = essays.rename(columns={"generated": "label"}).assign(label=lambda f: f["label"].astype(float))
    family.fit(train, FitContext(progress=False))
    family.save(tmp_path)
    reloaded = CausalLMFamily.load(tmp_path)
    assert reloaded.params.quantization == "4bit"
    np.testing.assert_allclose(reloaded.predict(train), family.predict(train), atol=1e-3)


class _ScriptedFamily:
    """Stands in for a transformer: each evaluation's scores are scripted; the 'weights' are a counter."""

    def __init__(self, aucs: list[float]) -> None:
        self.labels = np.array([0.0, 0.0, 1.0, 1.0])
        self.rounds = iter(aucs)
        self.calls = 0
        self.model = types.SimpleNamespace(train=lambda: None)

    def _encode(self, texts: pd.Series) -> list[list[int]]:
        return [[1]] * len(texts)

    def _score(self, ids: list[list[int]]) -> np.ndarray:
        target = next(self.rounds)  # AUC 1.0: ordered; 0.5: one pair swapped; 0.0: reversed
        return {1.0: np.array([0.1, 0.2, 0.8, 0.9]), 0.75: np.array([0.1, 0.85, 0.8, 0.9]),
                0.5: np.array([0.1, 0.95, 0.8, 0.2]), 0.0: np.array([0.9, 0.8, 0.2, 0.1])}[target]  # fmt: skip

    def _gather_trained_state(self) -> dict[str, int]:
        self.calls += 1
        return {"snapshot": self.calls}


@pytest.mark.parametrize(("patience", "stops_at", "best_step"), [(2, 8, 4), (None, None, 4), (3, None, 4)])
def test_the_watcher_keeps_the_best_and_stops_when_patience_is_spent(patience, stops_at, best_step) -> None:
    from daigt.families.transformer import _Watcher
    from daigt.hf.training_log import EvaluationSpec, LoggingSpec, TrainingLog

    family = _ScriptedFamily([0.75, 1.0, 0.5, 0.0])
    watch = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": family.labels})
    watcher = _Watcher(family, watch, EvaluationSpec(every=2, patience=patience), per_epoch=10)
    log = TrainingLog(LoggingSpec(tensorboard=False), None, True, "test")
    stopped = [step for step in range(1, 9) if watcher.due(step, 100) and watcher.evaluate(step, 0, log)]
    assert stopped == ([stops_at] if stops_at else [])
    assert watcher.best_step == best_step and watcher.best_state == {"snapshot": 2}  # taken at each improvement
    assert [round(p["auc"], 2) for p in log.validation] == [0.75, 1.0, 0.5, 0.0]
    assert log.best is not None and log.best["step"] == best_step


@pytest.mark.parametrize("kind", ["deberta", "mistral"])
def test_the_generator_head_learns_families_beside_the_detector(
    kind: str, tiny_models: dict[str, Path], essays, tmp_path: Path
) -> None:
    """One shared encoder, two heads: the family loss trains the extra outputs; save and load keep them."""
    from conftest import AI_WORDS

    from daigt.families import FitContext
    from daigt.families.transformer import CausalLMFamily

    train = essays.rename(columns={"generated": "label"}).assign(label=lambda f: f["label"].astype(float))
    ai = np.flatnonzero(train["label"] == 1)
    sources = np.where(np.arange(len(ai)) % 2 == 0, "gpt-4", "llama-2-chat")
    train.loc[ai, "source"] = sources
    marker = {"gpt-4": AI_WORDS[0], "llama-2-chat": AI_WORDS[1]}
    train.loc[ai, "text"] = [f"{(marker[s] + ' ') * 8}{t}" for s, t in zip(sources, train.loc[ai, "text"], strict=True)]
    params = {"pretrained": str(tiny_models[kind]), "max_length": 48, "batch_size": 8, "epochs": 6, "lr": 3e-3,
              "generator_head": {"weight": 1.0}}  # fmt: skip
    cls = EncoderFamily if kind == "deberta" else CausalLMFamily
    family = cls(params, seed=0)
    family.fit(train, FitContext(progress=False))
    assert family.generator_classes == ["llama", "openai-chat"]
    probs = family.predict_generator(train.iloc[ai])
    assert probs.shape == (len(ai), 2) and np.allclose(probs.sum(axis=1), 1)
    truth = np.where(sources == "gpt-4", 1, 0)
    assert (probs.argmax(axis=1) == truth).mean() > 0.9
    assert family.predict(train).shape == (len(train),)  # the detector's score is the first output
    family.save(tmp_path)
    loaded = cls.load(tmp_path)
    np.testing.assert_allclose(loaded.predict_generator(train.iloc[ai]), probs, atol=1e-5)
    np.testing.assert_allclose(loaded.predict(train), family.predict(train), atol=1e-5)
    plain = cls({k: v for k, v in params.items() if k != "generator_head"}, seed=0)
    with pytest.raises(DaigtError, match="no generator head"):
        plain.predict_generator(train)

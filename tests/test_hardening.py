"""Hardening in the pipeline: deobfuscation undoes what it can, copies stay fold-safe, per-epoch copies come
from one place, and attack mode scores a trained model under each op."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from helpers import train_args
from test_augment import ESSAY

import attack as attack_cli
import train_fold
from augment.lexicon import HOMOGLYPHS, ZERO_WIDTH
from augment.ops import OPS
from daigt.config import AugmentSpec, DeobfuscateSpec
from daigt.deobfuscate import deobfuscate, normalise
from daigt.hardening import Hardening, attacked, for_fold


def test_deobfuscation_undoes_invisible_and_lookalike_attacks() -> None:
    attacked = OPS["zero_width"](OPS["homoglyph"](ESSAY, random.Random(1), 0.5), random.Random(2), 0.5)
    assert attacked != ESSAY
    assert any(c in attacked for c in ZERO_WIDTH) and any(g in attacked for gs in HOMOGLYPHS.values() for g in gs)
    assert normalise(attacked) == ESSAY
    assert normalise(OPS["whitespace"](ESSAY, random.Random(0), 0.5)) == ESSAY
    assert deobfuscate("Peple dont care becuase it is hard.") == "People don't care because it is hard."


def test_fold_safety_copies_follow_their_parent() -> None:
    fit = pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"]})
    copies = pd.DataFrame({"id": ["a__aug1", "c__aug1"], "text": ["x1", "z1"], "parent_id": ["a", "c"]})
    assert for_fold(copies, fit)["id"].tolist() == ["a", "b", "a__aug1"]


def test_fold_training_with_augmentation_and_attack_report(workspace: dict[str, Path], tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 1\nops:\n  - {op: char_typo, p: 1.0, intensity: 0.2}\n  - {op: homoglyph, p: 1.0}\n")
    model = workspace["model"]
    model.write_text(
        model.read_text() + f"augment: {{recipe: {recipe}, copies: 2}}\ndeobfuscate: {{spelling: false}}\n"
    )
    train_fold.main(train_args(workspace))
    for k in range(3):
        m = json.loads((workspace["artifacts"] / "tiny_tfidf" / f"fold{k}" / "metrics.json").read_text())
        assert m["n_augmented_copies"] == 2 * m["n_train"]  # copies of the fit rows only, never the held-out
    attack_cli.main(["--model", "tiny_tfidf", "--config", str(workspace["project"]), "--recipe", str(recipe),
                 "--artifacts", str(workspace["artifacts"])])  # fmt: skip
    report = json.loads((workspace["artifacts"] / "tiny_tfidf" / "attack" / "attack.json").read_text())
    aucs = {row["condition"]: row["auc"] for row in report["conditions"]}
    assert [row["condition"] for row in report["conditions"]] == ["clean", "char_typo", "homoglyph", "whole recipe"]
    assert aucs["clean"] > 0.8 and aucs["homoglyph"] == pytest.approx(aucs["clean"])  # normalised away
    assert (workspace["artifacts"] / "tiny_tfidf" / "attack" / "attack.png").read_bytes()[:4] == b"\x89PNG"


def test_epoch_copies_are_fresh_per_epoch_deterministic_and_cleaned(tmp_path: Path, essays: pd.DataFrame) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 3\nops:\n  - {op: char_typo, p: 1.0, intensity: 0.3}\n  - {op: zero_width, p: 1.0}\n")
    rows = essays.head(6)
    plain = Hardening(AugmentSpec(each_epoch=str(recipe)), None).epoch_texts()
    cleaned = Hardening(AugmentSpec(each_epoch=str(recipe)), DeobfuscateSpec(spelling=False)).epoch_texts()
    assert plain is not None and cleaned is not None
    first, again, second = plain(rows, 0), plain(rows, 0), plain(rows, 1)
    assert first.tolist() == again.tolist() and first.tolist() != second.tolist()
    assert (first.index == rows.index).all() and first.tolist() != rows["text"].tolist()
    assert any(c in "".join(first) for c in ZERO_WIDTH)
    assert not any(c in "".join(cleaned(rows, 0)) for c in ZERO_WIDTH)  # the model sees cleaned text
    assert Hardening(None, None).epoch_texts() is None


def test_attacked_texts_are_cached_by_recipe_and_essays_and_a_damaged_cache_is_recomputed(
    tmp_path: Path, essays: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import augment.pipeline

    recipe = "configs/augment/attack_heldout.yaml"
    frame = essays.head(20)[["id", "text"]]
    direct = attacked(frame, recipe)
    calls = []
    real = augment.pipeline.augment_frame
    monkeypatch.setattr(augment.pipeline, "augment_frame", lambda *a, **k: calls.append(1) or real(*a, **k))
    first, again = attacked(frame, recipe, tmp_path), attacked(frame, recipe, tmp_path)
    pd.testing.assert_frame_equal(first, direct)
    pd.testing.assert_frame_equal(again, direct)
    assert len(calls) == 1 and not (first["text"] == frame["text"]).all()  # computed once, then read back
    (cache,) = tmp_path.glob("attacked-*.json")
    cache.write_text('["only one text"]')  # damaged: not one text per essay
    pd.testing.assert_frame_equal(attacked(frame, recipe, tmp_path), direct)
    assert len(calls) == 2
    attacked(frame.assign(text=frame["text"] + " more"), recipe, tmp_path)  # other essays: another cache file
    assert len(list(tmp_path.glob("attacked-*.json"))) == 2 and len(calls) == 3

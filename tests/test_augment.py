"""augment/: every op does what it says at about its rate, deterministically, and survives messy input;
recipes are validated; the CLI keeps every row. (Using copies in training: test_hardening.py.)"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augment.__main__ import main as augment_main
from augment.backtranslate import Apertium
from augment.errors import AugmentError
from augment.ops import OPS
from augment.pipeline import augment_frame
from augment.recipe import ALL_OPS, Augmenter, Recipe, rng_for

ESSAY = (
    "Cars are important to modern society. However, they cause pollution and traffic in big cities.\n\n"
    "Many students think that walking is better. It is healthier, cheaper and quieter than driving.\n\n"
    "In conclusion, people should drive less. The benefits for everyone would be significant."
)
WORD_OPS = ["char_typo", "keyboard", "ocr", "homoglyph", "zero_width", "case_flip", "synonym"]


def words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("op", sorted(ALL_OPS))
def test_every_op_is_deterministic_and_survives_empty_and_huge_input(op: str) -> None:
    fn = ALL_OPS[op]
    assert fn(ESSAY, rng_for(1, "e1", 1, op), 0.3) == fn(ESSAY, rng_for(1, "e1", 1, op), 0.3)
    assert fn("", random.Random(0), 0.5) == ""
    huge = (ESSAY + "\n\n") * 400  # ~100,000 characters
    assert len(fn(huge, random.Random(0), 0.1)) > 0.5 * len(huge)


def test_every_op_has_a_row_in_the_hardening_page() -> None:
    """Adding an op is one function and one table row (docs/hardening.md says so): the row is not forgotten."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "hardening.md").read_text()
    rows = [line.split("|")[1] for line in page.splitlines() if line.startswith("| `")]
    named = set(re.findall(r"`(\w+)`", " ".join(rows)))
    assert sorted(set(ALL_OPS) - named) == []


@pytest.mark.parametrize("op", WORD_OPS)
def test_word_ops_change_about_their_intensity_and_keep_paragraphs(op: str) -> None:
    text = (ESSAY + "\n\n") * 30
    changed = []
    for seed in range(5):
        out = ALL_OPS[op](text, random.Random(seed), 0.2)
        assert out.count("\n\n") == text.count("\n\n")  # paragraph count kept
        a, b = words(text), words(out)
        if len(a) == len(b):
            changed.append(np.mean([x != y for x, y in zip(a, b, strict=True)]))
    rate = float(np.mean(changed))
    # synonyms only hit content words WordNet knows, OCR/homoglyph only words with a mappable letter
    low = 0.03 if op in {"synonym", "ocr", "homoglyph"} else 0.12
    assert low < rate < 0.26, rate


def test_sentence_and_casing_ops() -> None:
    swapped = OPS["sentence_swap"](ESSAY, random.Random(3), 1.0)
    assert sorted(re.split(r"(?<=[.!?])\s+", swapped)) == sorted(re.split(r"(?<=[.!?])\s+", ESSAY))
    assert swapped != ESSAY and swapped.count("\n\n") == 2
    assert OPS["lowercase_all"](ESSAY, random.Random(0), 1.0) == ESSAY.lower()
    lowered = OPS["lower_sentence_start"](ESSAY, random.Random(0), 1.0)
    assert not re.search(r"(^|[.!?]\s+)[A-Z]", lowered)
    assert OPS["shout"](ESSAY, random.Random(0), 1.0) == ESSAY.upper()
    deleted = OPS["word_delete"](ESSAY, random.Random(0), 0.5)
    assert 0.3 < len(words(deleted)) / len(words(ESSAY)) < 0.7 and deleted.count("\n\n") == 2
    assert len(words(OPS["word_duplicate"](ESSAY, random.Random(0), 1.0))) == 2 * len(words(ESSAY))
    assert not re.search(r"[,.]", OPS["punct_drop"](ESSAY, random.Random(0), 1.0))


def test_back_translation_offline_batches_and_keeps_order() -> None:
    texts = ["The cat is on the table.", "I think that cars are bad for the city.", "Hello."]
    out = Apertium()(texts)
    assert len(out) == 3 and out[1] != texts[1] and "cars" in out[1] and "cat" in out[0]


def test_recipe_is_the_same_for_any_chunking_and_marks_ops(essays: pd.DataFrame) -> None:
    recipe = Recipe.from_dict({"seed": 5, "ops": [{"op": "char_typo", "p": 0.5, "intensity": 0.1}, {"op": "shout"}]})
    ids, texts = essays["id"].tolist(), essays["text"].tolist()
    whole, ops = Augmenter(recipe).apply(ids, texts)
    parts = [Augmenter(recipe).apply(ids[i : i + 7], texts[i : i + 7]) for i in range(0, len(ids), 7)]
    assert whole == [t for p in parts for t in p[0]]
    assert all(o.endswith("shout") for o in ops) and 0.3 < np.mean(["char_typo" in o for o in ops]) < 0.7
    with pytest.raises(AugmentError, match="unknown op 'teleport'"):
        Recipe.from_dict({"ops": [{"op": "teleport"}]})


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (
            {"ops": [{"op": "char_typo", "intensty": 0.1}]},
            r"ops\[0\]\.intensty: unknown key — did you mean 'intensity'",
        ),
        ({"ops": [{"op": "char_typ"}]}, "unknown op 'char_typ' \\(did you mean 'char_typo'\\?"),
        ({"opss": [{"op": "shout"}]}, "opss: unknown key — did you mean 'ops'"),
        ({"ops": [{"op": "shout", "p": 1.5}]}, r"ops\[0\]\.p \(shout\): expected a number in \[0, 1\], got 1.5"),
        ({"ops": [{"op": "back_translation", "engin": "apertium"}]}, "did you mean 'engine'"),
        ({"ops": [{"op": "back_translation", "engine": "apertium", "pivott": "spa"}]}, "did you mean 'pivot'"),
        ({"ops": ["shout"]}, r"ops\[0\]: expected a mapping"),
        ({"ops": []}, "needs a list of steps"),
        ([{"op": "shout"}], "expected a mapping with 'ops:'"),
        ({"seed": "x", "ops": [{"op": "shout"}]}, "seed: expected an integer"),
    ],
)
def test_recipe_mistakes_are_named_with_the_closest_key(recipe: object, message: str) -> None:
    with pytest.raises(AugmentError, match=message):
        Recipe.from_dict(recipe, source="r.yaml")


def test_cli_keeps_every_row_is_worker_independent_and_counts_bad_input(tmp_path: Path, essays, capsys) -> None:
    frame = essays.head(20).copy()
    frame.loc[0, "text"] = ""
    frame.loc[1, "text"] = "Это сочинение написано по-русски, а не по-английски."
    frame.loc[2, "text"] = "control\x07char essay text"
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    source.write_bytes(source.read_bytes().replace(b"control", b"contr\xffol"))  # an undecodable byte
    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 1\nops:\n  - {op: char_typo, p: 1.0, intensity: 0.2}\n  - {op: case_flip, p: 0.5}\n")
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.csv"
        augment_main(["--in", str(source), "--out", str(out), "--recipe", str(recipe), "--copies", "2",
                      "--workers", str(workers), "--no-progress"])  # fmt: skip
        outs.append(pd.read_csv(out, dtype=str, keep_default_na=False))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    out = outs[0]
    assert len(out) == 3 * len(frame) and (out["parent_id"].value_counts() == 3).all()
    assert set(out["copy"]) == {"0", "1", "2"}
    copies = out[out["copy"] != "0"].set_index("parent_id")
    original = out[out["copy"] == "0"].set_index("id")
    assert (copies["generated"] == original.loc[copies.index, "generated"]).all()  # labels travel with copies
    assert copies.loc["e0000", "text"].eq("").all()  # empty stays empty, and stays
    err = capsys.readouterr().err
    assert (
        "empty 1" in err and "undecodable_bytes 1" in err and "non_english 1" in err and "control_characters 1" in err
    )


def test_augment_frame_checks_row_counts(essays: pd.DataFrame) -> None:
    recipe = Recipe.from_dict({"ops": [{"op": "whitespace"}]})
    out = augment_frame(essays.head(5), recipe, copies=3, progress=False)
    assert len(out) == 20 and out["copy"].tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5


def test_textattack_ops_fail_clearly_outside_their_environment() -> None:
    recipe = Recipe.from_dict({"ops": [{"op": "textattack:CharSwapAugmenter"}]})
    try:
        import textattack  # noqa: F401
    except ImportError:
        with pytest.raises(AugmentError, match="make textattack-env"):
            Augmenter(recipe)
    else:  # the textattack environment: the op must run and be deterministic
        a, b = (Augmenter(recipe).apply(["x"], [ESSAY])[0] for _ in range(2))
        assert a == b and a != [ESSAY]


def test_marian_engine_batches_paragraphs_and_names_missing_weights(tmp_path: Path, monkeypatch, essays) -> None:
    from tiny_models import tiny_marian_pair

    from augment.backtranslate import EngineMissing, Marian

    root = tiny_marian_pair(tmp_path / "marian", essays["text"].tolist())
    engine = Marian(pivot="es", model_dir=str(root), batch_size=2)
    texts = ["first paragraph.\n\nsecond paragraph.\n\nthird.", "one paragraph only"]
    out = engine(texts)
    assert len(out) == 2 and [t.count("\n\n") for t in out] == [2, 0]
    assert out == engine(texts)  # greedy decoding: deterministic
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EngineMissing, match=r"hf download .*opus-mt-en-fr"):
        Marian(pivot="fr", model_dir=str(tmp_path / "nowhere"))


def test_cli_bad_recipe_or_input_is_one_line_and_writes_nothing(tmp_path: Path, essays, capsys) -> None:
    source, out, recipe = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "r.yaml"
    essays.head(3).to_csv(source, index=False)
    recipe.write_text("ops:\n  - {op: teleport}\n")
    for args in (["--in", str(source), "--recipe", str(recipe)], ["--in", str(tmp_path / "missing.csv")]):
        with pytest.raises(SystemExit) as exit_info:
            augment_main([*args, "--out", str(out), "--no-progress"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
    assert not out.exists()


def test_nlpaug_augmenters_are_recipe_ops_deterministic_per_essay(tmp_path: Path, essays: pd.DataFrame) -> None:
    """Character, word and contextual (masked-LM) augmenters from nlpaug, seeded per (essay, copy, op)."""
    from tiny_models import tiny_bert_mlm

    mlm = tiny_bert_mlm(tmp_path / "mlm", essays["text"].tolist())
    recipe = Recipe.from_dict(
        {
            "seed": 4,
            "ops": [
                {"op": "nlpaug:KeyboardAug", "p": 1.0, "intensity": 0.3},
                {"op": "nlpaug:ContextualWordEmbsAug", "p": 1.0, "intensity": 0.3, "model_path": str(mlm),
                 "model_type": "bert", "top_k": 5},
            ],
        }
    )  # fmt: skip
    ids, texts = essays["id"].head(8).tolist(), essays["text"].head(8).tolist()
    whole, ops = Augmenter(recipe).apply(ids, texts)
    again, _ = Augmenter(recipe).apply(ids[::-1], texts[::-1])  # another order, a fresh augmenter
    assert whole == again[::-1] and all(o == "nlpaug:KeyboardAug+nlpaug:ContextualWordEmbsAug" for o in ops)
    assert sum(a != b for a, b in zip(whole, texts, strict=True)) >= 6
    second_copy, _ = Augmenter(recipe).apply(ids, texts, copy=2)
    assert second_copy != whole
    with pytest.raises(AugmentError, match="did you mean 'model_path'"):
        Recipe.from_dict({"ops": [{"op": "nlpaug:ContextualWordEmbsAug", "model_pth": str(mlm)}]})
    with pytest.raises(AugmentError, match="no augmenter 'KeyboardAugg' \\(did you mean 'KeyboardAug'"):
        Augmenter(Recipe.from_dict({"ops": [{"op": "nlpaug:KeyboardAugg"}]}))
    with pytest.raises(AugmentError, match="could not be built"):
        Augmenter(Recipe.from_dict({"ops": [{"op": "nlpaug:ContextualWordEmbsAug", "model_path": str(tmp_path)}]}))

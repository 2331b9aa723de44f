"""The n-gram LM family: leave-one-out is exact, soft labels split counts, save/load and unseen text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daigt.families import FitContext, get_family
from daigt.metrics import auc
from tests.conftest import make_essays


def family(**params: object):
    return get_family("ngram_lm")(params, seed=0)


@pytest.fixture
def labeled() -> pd.DataFrame:
    return make_essays(120).rename(columns={"generated": "label"})


@pytest.mark.parametrize("order", [1, 2, 3])
def test_leave_one_out_statistics_equal_a_model_fit_without_the_essay(labeled: pd.DataFrame, order: int) -> None:
    """The statistics a training essay gets in fit (its own counts removed) are those of an unseen essay."""
    model = family(order=order)
    model.fit(labeled, FitContext())
    texts = labeled["text"].tolist()
    tokenized = model.tokenize(texts)
    enc = model.encode(tokenized)
    label = labeled["label"].to_numpy(dtype=float)
    rows = model._rows(enc)  # every key of these essays was counted: the rows _count gave fit
    loo = model._statistics(enc, model._own_counts(texts, tokenized, enc, np.stack([1 - label, label])), rows)
    for i in (0, 7, 42):  # every word of these essays also occurs elsewhere, so the vocabulary is unchanged
        rest = labeled.drop(index=labeled.index[i])
        without = family(order=order)
        without.fit(rest, FitContext())
        assert len(without.vocab) == len(model.vocab)
        alone = without._statistics(without.encode(without.tokenize([labeled["text"].iloc[i]])))
        np.testing.assert_allclose(loo.iloc[i].to_numpy(), alone.iloc[0].to_numpy(), rtol=1e-9, atol=1e-9)


def unigram_counts(model, cls: int) -> dict[str, float]:
    tokens = list(model.vocab)  # order-1 keys are token ids
    ids, counts = model.counts["key0_ids"], model.counts["key0_n"][cls]
    return {tokens[i]: c for i, c in zip(ids, counts, strict=True)}


def test_a_soft_label_splits_an_essay_between_the_two_classes(labeled: pd.DataFrame) -> None:
    """Counted at label 0.5, an essay adds half its counts to each class: halfway between leaving it out
    and counting it fully in both classes."""
    data = labeled.head(40)
    half, full, without = family(), family(), family()
    half.fit(data.assign(label=[0.5, *data["label"].tolist()[1:]]), FitContext())
    full.fit(
        pd.concat([data.iloc[[0]].assign(label=1.0), data.iloc[[0]].assign(label=0.0), data.iloc[1:]]), FitContext()
    )
    without.fit(data.iloc[1:], FitContext())
    for cls in (0, 1):
        a, b, c = unigram_counts(half, cls), unigram_counts(full, cls), unigram_counts(without, cls)
        assert set(a) == set(b)
        for token in a:
            assert a[token] == pytest.approx((b[token] + c.get(token, 0.0)) / 2)
        total = (full.counts["total"][cls] + without.counts["total"][cls]) / 2
        assert half.counts["total"][cls] == pytest.approx(total)


def test_learns_saves_loads_and_scores_unseen_text(labeled: pd.DataFrame, tmp_path: Path) -> None:
    model = family()
    model.fit(labeled.head(90), FitContext())
    held_out = labeled.tail(30)
    preds = model.predict(held_out)
    assert preds.shape == (30,) and ((preds >= 0) & (preds <= 1)).all()
    assert auc(held_out["label"].to_numpy(), preds) > 0.9
    model.save(tmp_path)
    loaded = type(model).load(tmp_path)
    np.testing.assert_allclose(loaded.predict(held_out), preds, rtol=0, atol=1e-12)
    (tmp_path / "compact").mkdir()
    model.save_compact(tmp_path / "compact")  # the Kaggle package's form: smaller, the same predictions
    size = lambda folder: sum(f.stat().st_size for f in folder.glob("*.*"))  # noqa: E731
    assert size(tmp_path / "compact") < size(tmp_path)
    np.testing.assert_array_equal(type(model).load(tmp_path / "compact").predict(held_out), loaded.predict(held_out))
    odd = pd.DataFrame({"text": ["", "zyzzyva quux never seen before", "!!!"]})
    scores = loaded.predict(odd)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    assert model.predict(odd.head(0)).shape == (0,)


def test_bad_order_is_a_clear_error() -> None:
    from daigt.errors import DaigtError

    with pytest.raises(DaigtError, match=r"order: must be >= 1"):
        family(order=0)
    with pytest.raises(DaigtError, match=r"lower params\.order"):  # n-gram keys would overflow int64
        family(order=40).fit(make_essays(20).rename(columns={"generated": "label"}), FitContext())


def test_prepared_tokens_change_nothing_but_speed(labeled: pd.DataFrame) -> None:
    plain, prepared = family(), family()
    prepared.prepare(labeled)
    for model in (plain, prepared):
        model.fit(labeled.head(80), FitContext())
    np.testing.assert_array_equal(plain.predict(labeled.tail(40)), prepared.predict(labeled.tail(40)))
    assert prepared._run_ids and not plain._run_ids


@pytest.mark.parametrize("chunk_tokens", [1, 7, 10**6])
def test_own_occurrences_count_each_essays_n_grams_and_contexts_in_that_essay_alone(
    monkeypatch: pytest.MonkeyPatch, chunk_tokens: int
) -> None:
    """Against the definition, essay by essay, in chunks of any size; a token that reads as the pad (the
    start-of-essay mark in a text) counts as one."""
    from daigt.families import ngram_lm

    monkeypatch.setattr(ngram_lm, "OWN_CHUNK_TOKENS", chunk_tokens)
    rng = np.random.default_rng(0)
    pad = np.array([False, False, True, False, False])  # token 2 reads as the pad
    ids = [rng.integers(0, 5, n).astype(np.int32) for n in (0, 1, 9, 3, 12, 0, 5)]
    own = ngram_lm.own_occurrences(ids, pad, order=3)
    for essay, counted in zip(ids, own, strict=True):
        padded = [0, 0] + [0 if pad[t] else int(t) + 1 for t in essay]
        grams = [[tuple(padded[p - j : p + 1]) for p in range(2, len(padded))] for j in range(3)]
        contexts = [[g[:-1] for g in grams[j]] for j in (1, 2)]
        expected = [[seq.count(x) for x in seq] for seq in grams + contexts]
        assert counted.shape == (5, len(essay)) and counted.tolist() == expected


@pytest.mark.parametrize("span", [1, 2**22])  # every table hashed | small keys by array
@pytest.mark.parametrize("ids", [[], [0], [3, 5, 9, 40]])
def test_a_key_is_found_at_its_row_and_a_key_never_counted_at_minus_one(
    monkeypatch: pytest.MonkeyPatch, span: int, ids: list[int]
) -> None:
    from daigt.families import ngram_lm

    monkeypatch.setattr(ngram_lm, "DENSE_KEY_SPAN", span)
    keys = np.array([0, 3, 4, 5, 9, 10, 40, 41, 2**40], np.int64)
    expected = [ids.index(k) if k in ids else -1 for k in keys.tolist()]
    assert ngram_lm.row_lookup(np.array(ids, np.int64))(keys).tolist() == expected


def test_tables_counted_by_array_equal_those_counted_by_hash(
    labeled: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daigt.families import ngram_lm

    models = []
    for span in (1, 2**22):  # every table hashed | tokens and one-token contexts by array
        monkeypatch.setattr(ngram_lm, "DENSE_KEY_SPAN", span)
        model = family(order=3)
        model.fit(labeled.head(80), FitContext())
        models.append((model, model.predict(labeled.tail(40))))
    (hashed, by_hash), (dense, by_array) = models
    assert hashed.counts.keys() == dense.counts.keys()
    for name in hashed.counts:
        np.testing.assert_array_equal(hashed.counts[name], dense.counts[name])
    np.testing.assert_array_equal(by_hash, by_array)


def test_keys_are_the_n_grams_of_each_essay_after_its_start_pads(labeled: pd.DataFrame) -> None:
    """The vectorised encoding against the definition, essay by essay, with unknown tokens and empty essays."""
    model = family(order=3)
    model.prepare(labeled)
    model.fit(labeled.head(60), FitContext())
    texts = ["", "Zyzzyva quux, never seen.", *labeled["text"].tail(5), "a"]
    enc = model.encode(model.tokenize(texts))
    base, unknown = len(model.vocab) + 1, len(model.vocab)
    expected_keys, expected_docs = [[], [], []], []
    for d, text in enumerate(texts):
        ids = [0, 0] + [model.vocab.get(t, unknown) for t in model._split(text)]  # 0: the start-of-essay pad
        for p in range(2, len(ids)):
            expected_docs.append(d)
            for j in range(3):
                key = 0
                for token in ids[p - j : p + 1]:
                    key = key * base + token
                expected_keys[j].append(key)
    assert enc.doc.tolist() == expected_docs and enc.n_docs == len(texts)
    assert [k.tolist() for k in enc.keys] == expected_keys


def test_fold_predictor_tokenizes_once_and_equals_each_fold_alone(labeled: pd.DataFrame, monkeypatch) -> None:
    folds = []
    for k in range(3):
        model = family(order=2)
        model.fit(labeled[labeled.index % 3 != k], FitContext())
        folds.append(model)
    new = make_essays(20, seed=11)
    alone = np.mean([m.predict(new) for m in folds], axis=0)
    NgramLM = type(folds[0])
    calls = []
    monkeypatch.setattr(NgramLM, "tokenize", lambda self, t, _f=NgramLM.tokenize: calls.append(1) or _f(self, t))
    np.testing.assert_allclose(NgramLM.fold_predictor(folds)(new), alone, rtol=0, atol=1e-12)
    assert len(calls) == 1


BPE = {"kind": "bpe", "fit_on": "train+test", "vocab_size": 300, "min_frequency": 1, "lowercase": True}


def test_bpe_tokens_come_from_a_tokenizer_learnt_on_the_run_but_not_its_holdout(
    labeled: pd.DataFrame, tmp_path: Path
) -> None:
    """With ``tokenizer:``, the LM reads the sub-words of a tokenizer trained on the prepared essays (the locked
    holdout excluded), exactly as ``tokenizers`` itself tokenizes them; saved and loaded, it scores the same."""
    from daigt.text.bpe import TokenizerSpec, train_bpe

    model = family(order=3, tokenizer=BPE)
    fitted, holdout = labeled.head(100), labeled.tail(20)
    model.prepare(pd.concat([fitted.assign(scored_only=False), holdout.assign(scored_only=True)]))
    direct = train_bpe(list(dict.fromkeys(fitted["text"])), TokenizerSpec(**BPE))
    assert model.bpe.get_vocab() == direct.get_vocab()
    tokenized = model.tokenize(labeled["text"].tolist())
    for ids, text in zip(tokenized.ids, labeled["text"], strict=True):
        assert [tokenized.tokens[i] for i in ids] == direct.encode(text).tokens
    model.fit(fitted, FitContext())
    assert set(model.vocab) - {"\x02"} <= set(direct.get_vocab())
    preds = model.predict(holdout)
    assert auc(holdout["label"].to_numpy(), preds) > 0.9
    model.save(tmp_path)
    loaded = type(model).load(tmp_path)
    np.testing.assert_allclose(loaded.predict(holdout), preds, rtol=0, atol=1e-12)


def test_bpe_folds_share_one_tokenization_and_unprepared_fits_learn_their_own(labeled: pd.DataFrame) -> None:
    prepared = family(order=2, tokenizer=BPE)
    prepared.prepare(labeled)
    folds = []
    for k in range(2):
        model = family(order=2, tokenizer=BPE)
        model.prepare(labeled)
        model.fit(labeled[labeled.index % 2 != k], FitContext())
        folds.append(model)
    new = make_essays(20, seed=11)
    alone = np.mean([m.predict(new) for m in folds], axis=0)
    np.testing.assert_allclose(type(folds[0]).fold_predictor(folds)(new), alone, rtol=0, atol=1e-12)
    assert folds[0]._tokenization() == folds[1]._tokenization() != family(order=2)._tokenization()
    unprepared = family(order=2, tokenizer=BPE)  # no prepare: a tokenizer of the fit's essays and the test's
    unprepared.fit(labeled.head(60), FitContext(unlabeled=labeled.tail(10)[["id", "text"]]))
    assert unprepared.bpe.get_vocab() != prepared.bpe.get_vocab()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tokenizer": {**BPE, "fit_on": "test"}}, "fit_on: train\\+test"),
        ({"tokenizer": {**BPE, "lowercase": False}}, "tokenizer.lowercase"),
        ({"tokenizer": BPE, "token_pattern": r"\\w+"}, "token_pattern: the tokenizer splits"),
        ({"tokenizer": BPE, "unknown_words": "drop"}, "unknown_words: unknown_words reads regex words"),
    ],
)
def test_a_tokenizer_the_lm_cannot_use_is_a_clear_error(params: dict, message: str) -> None:
    from daigt.errors import DaigtError

    with pytest.raises(DaigtError, match=message):
        family(**params)


@pytest.mark.parametrize("unknown_words", ["merge", "drop"])
def test_words_outside_the_english_list_are_merged_or_dropped(labeled: pd.DataFrame, unknown_words: str) -> None:
    from daigt.families.ngram_lm import UNKNOWN_WORD

    model = family(unknown_words=unknown_words)
    texts = ["Teh students dont like it, becuase 42 cars.", "", "qwzx"]
    tokenized = model.tokenize(texts)
    got = [[tokenized.tokens[i] for i in ids] for ids in tokenized.ids]
    if unknown_words == "merge":
        first = [UNKNOWN_WORD, "students", UNKNOWN_WORD, "like", "it", ",", UNKNOWN_WORD, "42", "cars", "."]
        assert got == [first, [], [UNKNOWN_WORD]]
    else:
        assert got == [["students", "like", "it", ",", "42", "cars", "."], [], []]
    model.fit(labeled, FitContext())
    assert model.predict(pd.DataFrame({"text": texts})).shape == (3,)


def test_the_function_word_view_scores_how_a_text_is_written_not_what_it_is_about(labeled: pd.DataFrame) -> None:
    model = family(order=3, text_view="function_words", lowercase=False)
    model.fit(labeled, FitContext(progress=False))
    written = pd.DataFrame({"text": ["The cats were sleeping, and I think they dreamed.", "A storm came."]})
    reworded = pd.DataFrame({"text": ["The ships were sinking, and I guess they drowned.", "A river rose."]})
    np.testing.assert_array_equal(model.predict(written), model.predict(reworded))
    plain = family(order=3)
    plain.fit(labeled, FitContext(progress=False))
    assert not np.array_equal(plain.predict(written), plain.predict(reworded))  # the raw view reads the words

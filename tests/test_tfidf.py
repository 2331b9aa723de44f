"""The TF-IDF family: the shared-count shortcut equals sklearn per fold; save/load; soft labels."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from daigt.families import FitContext, get_family
from daigt.families.base import expand_soft_labels, population_weights
from daigt.schema import parse
from daigt.text.ngram_tfidf import NgramTfidf, VectorizerSpec
from tests.conftest import make_essays


def vectorizer(params: dict) -> VectorizerSpec:
    """A config's ``vectorizer:`` mapping, typed and checked as a model config reads it."""
    return parse(VectorizerSpec, params, "test")


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": "word", "ngram_range": [1, 2], "min_df": 2, "sublinear_tf": True},
        {"analyzer": "char_wb", "ngram_range": [2, 4], "min_df": 1, "max_df": 0.9, "lowercase": False},
        {"analyzer": "word", "ngram_range": [1, 1], "min_df": 3, "max_df": 40},
        {"analyzer": "char", "ngram_range": [1, 4], "lowercase": False, "max_features": 300, "sublinear_tf": True},
    ],
)
def test_prepared_counts_equal_sklearn_fitted_per_fold(params: dict) -> None:
    texts = make_essays(80)["text"].tolist()
    fit_docs, other = texts[:60], texts[60:]
    features = NgramTfidf(vectorizer(params))
    features.prepare(texts)
    features.fit(fit_docs)
    sk_params = {**params, "ngram_range": tuple(params["ngram_range"])}
    reference = TfidfVectorizer(**sk_params).fit(fit_docs)
    assert features.term_strings() == list(reference.get_feature_names_out())
    np.testing.assert_allclose(features.transform(other).toarray(), reference.transform(other).toarray(), atol=1e-12)
    unseen = ["a brand new essay the cache never saw"]
    np.testing.assert_allclose(features.transform(unseen).toarray(), reference.transform(unseen).toarray())


def test_weighting_in_row_chunks_gives_the_very_same_matrix(monkeypatch) -> None:
    """Chunks of 7 rows (several, the last one short; some rows with no kept n-gram) equal one whole chunk."""
    import daigt.text.ngram_tfidf as module

    texts = [*make_essays(60)["text"].tolist(), "zzz qqq", ""]

    def fitted() -> NgramTfidf:
        features = NgramTfidf(
            vectorizer({"analyzer": "word", "ngram_range": [1, 2], "min_df": 2, "sublinear_tf": True})
        )
        features.prepare(texts)
        features.fit(texts[:40])
        return features

    whole = fitted().transform(texts[40:])
    monkeypatch.setattr(module, "WEIGHT_CHUNK_ROWS", 7)
    features = fitted()
    for chunked in (features.transform(texts[40:]), features.weighted(*features.count(texts[40:]))):  # cached, not
        assert chunked.shape == whole.shape and chunked.has_sorted_indices
        for part in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(chunked, part), getattr(whole, part))
    assert whole[len(texts) - 42 :].nnz == 0  # the unknown-words row and the empty essay: no entries


def test_a_refit_on_the_same_essays_keeps_the_fold_matrix_and_another_fit_rebuilds_it() -> None:
    """A pseudo-label round refits on essays the fit already read (in another order, some twice): the terms,
    IDF and weighted rows stay; a fit on other essays weighs everything anew, exactly as sklearn fits them."""
    texts = make_essays(80)["text"].tolist()
    features = NgramTfidf(vectorizer({"analyzer": "word", "ngram_range": [1, 2], "min_df": 2, "sublinear_tf": True}))
    features.prepare(texts)
    for fit_docs in (texts[:60], texts[20:]):
        features.fit(fit_docs)
        first = features.transform(texts)
        kept = features._fold_matrix
        features.fit([*fit_docs[::-1], *fit_docs[:5]])
        assert features._fold_matrix is kept
        again = features.transform(texts[10:30])
        reference = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(fit_docs)
        np.testing.assert_allclose(again.toarray(), reference.transform(texts[10:30]).toarray(), atol=1e-12)
        np.testing.assert_array_equal(again.toarray(), first[10:30].toarray())


def test_a_fit_on_unprepared_essays_leaves_the_prepared_fits_exact() -> None:
    """An uncached fit learns its own token table; a later cached fit must read codes in the prepared one."""
    texts = make_essays(80)["text"].tolist()
    features = NgramTfidf(vectorizer({"analyzer": "word", "ngram_range": [1, 3], "min_df": 2}))
    features.prepare(texts[:60])
    features.fit([*texts[60:], "qqq zzz words never prepared"])  # not all prepared: counted directly
    features.fit(texts[:40])  # prepared: the cache
    reference = TfidfVectorizer(ngram_range=(1, 3), min_df=2).fit(texts[:40])
    assert features.term_strings() == list(reference.get_feature_names_out())
    unseen = [*texts[60:], "zzz qqq a brand new essay"]
    np.testing.assert_allclose(features.transform(unseen).toarray(), reference.transform(unseen).toarray(), atol=1e-12)


def test_max_features_keeps_the_most_frequent_terms() -> None:
    texts = make_essays(50)["text"].tolist()
    features = NgramTfidf(vectorizer({"analyzer": "word", "max_features": 10}))
    features.prepare(texts)
    features.fit(texts)
    reference = TfidfVectorizer(max_features=10).fit(texts)
    assert sorted(features.term_strings()) == sorted(reference.get_feature_names_out())


def test_soft_labels_expand_to_weighted_hard_rows() -> None:
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "label": [1.0, 0.0, 0.25]})
    rows, targets, weights = expand_soft_labels(frame)
    pairs = sorted(zip(rows["id"], targets, weights, strict=True))
    assert pairs == [("a", 1, 1.0), ("b", 0, 1.0), ("c", 0, 0.75), ("c", 1, 0.25)]


def test_a_weight_column_multiplies_the_soft_label_weights() -> None:
    frame = pd.DataFrame({"id": ["a", "c"], "text": ["x", "z"], "label": [1.0, 0.25], "weight": [2.0, 4.0]})
    rows, targets, weights = expand_soft_labels(frame)
    assert sorted(zip(rows["id"], targets, weights, strict=True)) == [("a", 1, 2.0), ("c", 0, 3.0), ("c", 1, 1.0)]


def test_population_weights_give_every_domain_and_class_the_same_total() -> None:
    frame = pd.DataFrame(
        {
            "id": ["r1", "r2", "r3", "r4", "r5", "r6", "s1", "s2", "copy", "pseudo"],
            "domain": ["reviews"] * 4 + ["reviews"] * 2 + ["speeches"] * 2 + [None, None],
            "label": [1, 1, 1, 1, 0, 0, 1, 0, 1, 0],
            "parent_id": [""] * 8 + ["s1", ""],
        }
    )
    weights = population_weights(frame, "domain", 1.0)
    assert weights.mean() == pytest.approx(1.0)
    cell = frame["domain"].fillna(frame["parent_id"].map({"s1": "speeches"})).fillna("?") + frame["label"].astype(str)
    totals = pd.Series(weights).groupby(cell.to_numpy()).sum()
    assert totals.nunique() == 1  # reviews|1 (4 rows), reviews|0, speeches|1 (with its copy), speeches|0, ?|0
    assert weights[-2] == weights[6]  # the copy is weighed in its parent's cell
    np.testing.assert_allclose(population_weights(frame, "domain", 0.0), 1.0)
    half = population_weights(frame, "domain", 0.5)
    assert half[0] / half[4] == pytest.approx((2 / 4) ** 0.5)  # square-root balancing sits between


BPE = {"kind": "bpe", "fit_on": "test", "vocab_size": 300, "min_frequency": 1}


def tiny_family(vocabulary_from: str = "train", tokenizer: dict | None = None) -> object:
    params = {
        **({"tokenizer": tokenizer} if tokenizer else {}),
        "fit_vocabulary_on": vocabulary_from,
        "vectorizer": {"ngram_range": [1, 3]} if tokenizer else {"analyzer": "word"},
        "classifiers": {
            "nb": {"kind": "multinomial_nb", "weight": 1.0},
            "lr": {"kind": "logistic_regression", "weight": 2.0},
        },
    }
    return get_family("tfidf")(params, seed=0)


def fitted_tiny_family():
    """A BPE model fitted on 80 of 100 essays (20 test essays prepared with them); the 100 essays."""
    train, test = make_essays(100), make_essays(20, seed=5)
    train = train.rename(columns={"generated": "label"})
    model = tiny_family("train+test")
    model.prepare(pd.concat([train, test]))
    model.fit(train.iloc[:80], FitContext(unlabeled=test))
    return model, train


def test_fit_predict_save_load_round_trip(tmp_path: Path) -> None:
    model, train = fitted_tiny_family()
    preds = model.predict(train.iloc[80:])
    assert preds.shape == (20,) and ((preds >= 0) & (preds <= 1)).all()
    assert np.corrcoef(preds, train["label"].iloc[80:])[0, 1] > 0.5  # it learned the two vocabularies
    model.save(tmp_path)
    loaded = type(model).load(tmp_path)
    np.testing.assert_allclose(loaded.predict(train.iloc[80:]), preds)  # no cache after load: sklearn path
    assert not hasattr(loaded.classifiers["nb"], "feature_count_")  # fit-only arrays are not saved...
    assert hasattr(model.classifiers["nb"], "feature_count_")  # ...nor taken from the model in memory
    compact = tmp_path / "compact"
    compact.mkdir()
    loaded.save_compact(compact)  # what the Kaggle package ships: smaller, read back to the same predictions
    assert (compact / "tfidf.joblib").stat().st_size < (tmp_path / "tfidf.joblib").stat().st_size
    np.testing.assert_array_equal(type(model).load(compact).predict(train.iloc[80:]), loaded.predict(train.iloc[80:]))


def test_unknown_classifier_kind_is_a_clear_error() -> None:
    from daigt.errors import DaigtError

    with pytest.raises(DaigtError, match="unknown kind 'forest'"):
        get_family("tfidf")({"classifiers": {"rf": {"kind": "forest"}}}, seed=0)
    with pytest.raises(DaigtError, match="unknown model family 'gpt'"):
        get_family("gpt")


@pytest.mark.parametrize("tokenizer", [None, BPE], ids=["words", "bpe"])
def test_fold_predictor_counts_once_and_equals_each_fold_predicting_alone(
    tmp_path: Path, tokenizer: dict | None, monkeypatch
) -> None:
    train = make_essays(120).rename(columns={"generated": "label"})
    new = make_essays(15, seed=9).assign(text=lambda f: f["text"] + " only1 fold2word")
    test = make_essays(30, seed=4)  # the BPE folds' tokenizer is fitted on it: one tokenizer, so one count
    marked = [train["text"] + f" only{k} fold{k}word" for k in range(3)]
    fits = [train.assign(text=marked[k])[train.index % 3 != k] for k in range(3)]
    run = pd.concat(fits, ignore_index=True)  # the run's essays, prepared once as fold_trainer.py does

    def trained_folds(prepared: list[pd.DataFrame], home: Path) -> list:
        folds = []
        for k, fit in enumerate(fits):  # three folds with different vocabularies, reloaded as predict sees them
            model = tiny_family("train", tokenizer)
            model.prepare(prepared[k])
            model.fit(fit, FitContext(unlabeled=test))
            (home / str(k)).mkdir(parents=True)
            model.save(home / str(k))
            folds.append(type(model).load(home / str(k)))
        return folds

    folds = trained_folds([run] * 3, tmp_path / "run")
    assert len({tuple(sorted(m.features.term_strings())) for m in folds}) == 3  # three vocabularies
    assert all(m.features.terms.dtype == np.int64 for m in folds)  # n-grams named by rank codes
    calls = []
    monkeypatch.setattr(
        NgramTfidf, "count", lambda self, *a, _c=NgramTfidf.count, **kw: calls.append(1) or _c(self, *a, **kw)
    )
    shared = type(folds[0]).fold_predictor(folds)(new)
    assert len(calls) == 1  # one count for the three folds
    alone = np.mean([m.predict(new) for m in folds], axis=0)
    np.testing.assert_allclose(shared, alone, rtol=0, atol=1e-12)
    # folds prepared apart (own token tables, so own rank codes) still score alike, each counting for itself
    apart = trained_folds(fits, tmp_path / "apart")
    calls.clear()
    np.testing.assert_allclose(type(apart[0]).fold_predictor(apart)(new), alone, rtol=0, atol=1e-12)
    assert len(calls) == (1 if tokenizer else 3)


def test_function_word_view_masks_content_words_and_keeps_syntax() -> None:
    from daigt.text.views import function_word_view

    assert function_word_view("I think Paris is great, but the cars aren't.") == "I w W is w, but the w w'w."
    assert function_word_view("") == "" and function_word_view("42, 7!") == "42, 7!"
    assert function_word_view("Élan x2y café THE") == "Éw w2w wé THE"  # letter runs are ASCII, as before


def test_function_word_view_model_scores_new_essays_like_its_folds(tmp_path: Path) -> None:
    """The view applies on every path: fit, per-fold predict, and the shared fold predictor."""
    train = make_essays(90).rename(columns={"generated": "label"})
    new = make_essays(10, seed=3)
    folds = []
    for k in range(3):
        model = get_family("tfidf")(
            {
                "text_view": "function_words",
                "vectorizer": {"ngram_range": [1, 2], "token_pattern": r"(?u)\b\w+\b|[^\w\s]"},
                "classifiers": {"sgd": {"params": {"loss": "modified_huber"}}},
            },
            seed=0,
        )
        fit = train[train.index % 3 != k]
        model.prepare(fit)
        model.fit(fit, FitContext())
        folds.append(model)
    assert all("w" in m.features.term_strings() for m in folds)  # masked words are features
    assert not any("furthermore" in m.features.term_strings() for m in folds)  # content words are not
    shared = type(folds[0]).fold_predictor(folds)(new)
    np.testing.assert_allclose(shared, np.mean([m.predict(new) for m in folds], axis=0), rtol=0, atol=1e-12)


def test_a_model_saved_before_terms_and_codes_loads_and_scores_the_same() -> None:
    """Folds saved by earlier versions pickled a fitted TfidfVectorizer (string vocabulary, packed terms)."""
    texts = make_essays(60)["text"].tolist()
    features = NgramTfidf(vectorizer({"analyzer": "word", "ngram_range": [1, 2], "sublinear_tf": True}))
    features.prepare(texts)
    features.fit(texts[:40])
    old = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, vocabulary=features.term_strings()).fit(texts[:3])
    old._tfidf.idf_ = features.tfidf.idf_
    terms = features.term_strings()
    state = {k: v for k, v in features.__dict__.items() if k not in ("terms", "tfidf", "tokenizer", "codes", "_tokens")}
    state |= {"vectorizer": old, "_terms": ("".join(terms), np.array([len(t) for t in terms]))}
    state["_kept"] = {}  # a run-time field models saved before the fold column map carried
    del state["spec"]  # and the vectorizer arguments as a dict, before the typed spec
    state["params"] = {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True}
    loaded = NgramTfidf.__new__(NgramTfidf)
    loaded.__setstate__(state)
    assert loaded.term_strings() == terms and loaded.codes is False and loaded.spec == features.spec
    np.testing.assert_allclose(loaded.transform(texts[40:]).toarray(), old.transform(texts[40:]).toarray())


def test_a_model_whose_family_kept_the_tokenizer_and_named_its_old_module_loads_and_scores_the_same(
    tmp_path: Path,
) -> None:
    """Saved before the text helpers left families/: the family held the BPE tokenizer (``bpe``) and its params
    named ``daigt.families.bpe.TokenizerSpec``. Both migrate where the family is loaded."""
    import pickle

    from daigt.families.tfidf import migrate_saved_state
    from daigt.text.bpe import TokenizerSpec

    model, train = fitted_tiny_family()
    expected = model.predict(train.iloc[80:])
    state = model.__getstate__()
    state["features"] = copy.copy(state["features"])
    state["bpe"], state["features"].tokenizer = state["features"].tokenizer, None  # the older layout
    assert migrate_saved_state(state)[1] is state["bpe"] and "bpe" not in migrate_saved_state(state)[0]
    loaded = type(model).__new__(type(model))
    loaded.__setstate__(state)
    np.testing.assert_allclose(loaded.predict(train.iloc[80:]), expected, rtol=0, atol=1e-12)
    spec = TokenizerSpec(vocab_size=300)
    old_path = pickle.dumps(spec, protocol=0).replace(b"daigt.text.bpe", b"daigt.families.bpe")
    assert b"daigt.families.bpe" in old_path and pickle.loads(old_path) == spec


def test_a_tokenizer_refitted_on_new_test_essays_counts_with_its_own_tokens() -> None:
    """fit_on: test retrains the tokenizer when the test essays change (each held-out split of evaluate): the
    model must then equal one that only ever saw the new test essays."""
    train = make_essays(60).rename(columns={"generated": "label"})
    first, second = make_essays(20, seed=3), make_essays(20, seed=8).assign(text=lambda f: f["text"] + " zyzzyva")
    reused, fresh = tiny_family("train+test", BPE), tiny_family("train+test", BPE)
    reused.prepare(pd.concat([train, first, second]))
    reused.fit(train, FitContext(unlabeled=first))
    reused.fit(train, FitContext(unlabeled=second))
    fresh.prepare(pd.concat([train, first, second]))
    fresh.fit(train, FitContext(unlabeled=second))
    assert reused.features.term_strings() == fresh.features.term_strings()
    np.testing.assert_array_equal(reused.predict(second), fresh.predict(second))

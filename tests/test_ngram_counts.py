"""numpy n-gram counting equals sklearn's CountVectorizer exactly, or declines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from daigt.families.ngram_counts import count_ngrams
from tests.conftest import make_essays

AWKWARD = [
    "Hello  world!\n\nNew   paragraph, here.",
    "",
    "a",
    "Ünïcödé café — naïve résumé; emoji 🙂 and\ttabs\r\nCRLF",
    "x x x x x x",
    "   leading and trailing   ",
    "ab a b abc a bc ab c Ġab Ġa ĠĠ zz z",  # tokens that are prefixes of others: "a b" < "ab" < "ab c" < "abc"
]


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": "char", "ngram_range": (1, 5), "lowercase": False},
        {"analyzer": "char", "ngram_range": (3, 5), "lowercase": True},
        {"analyzer": "char", "ngram_range": (2, 2), "strip_accents": "unicode"},
        {"analyzer": "word", "ngram_range": (1, 3), "lowercase": False, "token_pattern": r"(?u)\b\w+\b|[^\w\s]"},
        {"analyzer": "word", "ngram_range": (2, 4)},
        {"analyzer": "word", "ngram_range": (1, 3), "token_pattern": r"\S+"},
        # a token with a character below the space the n-grams are joined by: sorted as strings, not as tokens
        {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"[^ ]+", "lowercase": False},
    ],
)
def test_counts_and_terms_equal_sklearn(params: dict) -> None:
    texts = AWKWARD + make_essays(30)["text"].tolist()
    reference = CountVectorizer(**params, dtype=np.float64)
    expected = reference.fit_transform(texts)
    counts, terms = count_ngrams(texts, {**params, "dtype": np.float64})
    assert list(terms) == list(reference.get_feature_names_out())
    assert counts.shape == expected.shape and counts.dtype == np.float64
    assert abs(counts - expected).sum() == 0


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": "char_wb", "ngram_range": (2, 3)},
        {"analyzer": "word", "stop_words": "english"},
    ],
)
def test_declines_what_it_does_not_reproduce(params: dict) -> None:
    texts = [*make_essays(30)["text"].tolist(), " ".join(f"w{i}" for i in range(300))]
    assert count_ngrams(texts, params) is None


@pytest.mark.parametrize("max_code", [2**62, 10**6, 500])
def test_long_ngrams_of_a_large_vocabulary_stay_exact(max_code: int, monkeypatch) -> None:
    """Codes that would overflow are renumbered between steps; a tiny MAX_CODE forces it at every step."""
    import daigt.families.ngram_counts as module

    monkeypatch.setattr(module, "MAX_CODE", max_code)
    texts = [*make_essays(30)["text"].tolist(), " ".join(f"w{i}" for i in range(300)), "w1 w2 w1 w2 w1 w2"]
    params = {"analyzer": "word", "ngram_range": (1, 9)}
    reference = CountVectorizer(**params, dtype=np.float64)
    expected = reference.fit_transform(texts)
    counts, terms = count_ngrams(texts, {**params, "dtype": np.float64})
    assert list(terms) == list(reference.get_feature_names_out())
    assert abs(counts - expected).sum() == 0


@pytest.mark.parametrize("min_df", [2, 3])
def test_min_df_drops_only_rare_columns_and_keeps_the_rest_exact(min_df: int) -> None:
    texts = AWKWARD + make_essays(40)["text"].tolist()
    params = {"analyzer": "word", "ngram_range": (1, 3)}
    full, full_terms = count_ngrams(texts, {**params, "dtype": np.float64})
    pruned, terms = count_ngrams(texts, {**params, "dtype": np.float64}, min_df=min_df)
    kept = np.flatnonzero(full.getnnz(axis=0) >= min_df)
    assert 0 < len(terms) < len(full_terms) and list(terms) == list(full_terms[kept])
    assert abs(pruned - full[:, kept]).sum() == 0

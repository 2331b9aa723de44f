"""numpy n-gram counting equals sklearn's CountVectorizer exactly, or declines."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from daigt.text.ngram_counts import code_strings, count_ngrams, count_token_ngrams
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
    import daigt.text.ngram_counts as module

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


TOKENS = np.array(["[UNK]", "a", "ab", "b", "abc", "Ġa", "ĠĠ", "c", "bc", "Ġab", "zz", "!"], dtype=object)


def token_docs(n_docs: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, len(TOKENS), rng.integers(0, 40)).astype(np.int32) for _ in range(n_docs)]


@pytest.mark.parametrize(("ngram_range", "min_df"), [((1, 3), 1), ((3, 5), 2), ((2, 2), 1)])
def test_rank_codes_count_and_sort_like_the_joined_strings(ngram_range: tuple[int, int], min_df: int) -> None:
    """Token ids in, codes out: the same counts and column order as sklearn on the tokens joined by spaces."""
    docs = token_docs(60)
    counts, codes = count_token_ngrams(docs, TOKENS, ngram_range, min_df=min_df)
    assert codes.dtype == np.int64 and (np.diff(codes) > 0).all()
    reference = CountVectorizer(token_pattern=r"\S+", lowercase=False, ngram_range=ngram_range, min_df=min_df)
    expected = reference.fit_transform([" ".join(TOKENS[d]) for d in docs])
    assert code_strings(codes, TOKENS, ngram_range[1]) == list(reference.get_feature_names_out())
    assert abs(counts - expected).sum() == 0
    strings_counts, strings = count_token_ngrams(docs, TOKENS, ngram_range, min_df=min_df, codes=False)
    assert list(strings) == list(reference.get_feature_names_out()) and abs(strings_counts - expected).sum() == 0


def test_rank_codes_fall_back_to_strings_when_they_would_overflow_or_misorder() -> None:
    docs = token_docs(20)
    wide = np.array([f"t{i}" for i in range(7000)], dtype=object)  # 7001^5 > 2^63: 5-grams cannot be coded
    assert count_token_ngrams(docs, wide, (1, 5))[1].dtype == object
    assert count_token_ngrams(docs, wide, (1, 4))[1].dtype == np.int64
    low = TOKENS.copy()
    low[3] = "b\x01"  # a character below the joining space: token order is not string order
    _, terms = count_token_ngrams(docs, low, (1, 2))
    assert terms.dtype == object and list(terms) == sorted(terms)


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": "word", "ngram_range": (1, 4), "token_pattern": r"(?u)\b\w+\b|[^\w\s]"},
        {"analyzer": "char", "ngram_range": (2, 4)},  # joined by "": strings, not rank codes
    ],
)
def test_a_fixed_table_counts_known_ngrams_alike_and_drops_the_rest(params: dict) -> None:
    """New essays counted in a table learnt from others: every n-gram made only of the table's tokens has its
    own counts and the same name (rank code or string) as in the learning count; the others are dropped."""
    learnt_on, new = make_essays(30)["text"].tolist(), [*AWKWARD, *make_essays(10, seed=5)["text"].tolist()]
    table: dict[str, int] = {}
    _, learnt_terms = count_ngrams(learnt_on, {**params, "dtype": np.float64}, table=table, codes=True)
    size = len(table)
    counts, terms = count_ngrams(new, {**params, "dtype": np.float64}, table=table, fixed=True, codes=True)
    assert len(table) == size  # fixed: nothing learnt
    if params["analyzer"] == "word":
        assert terms.dtype == np.int64 and learnt_terms.dtype == np.int64
    reference = CountVectorizer(**params, dtype=np.float64)
    expected = reference.fit_transform(new)
    tokens = np.array(list(table), dtype=object)
    names = code_strings(terms, tokens, params["ngram_range"][1]) if terms.dtype == np.int64 else list(terms)
    analyse = CountVectorizer(**{**params, "ngram_range": (1, 1)}).build_analyzer()
    known = [
        i
        for i, name in enumerate(reference.get_feature_names_out())
        if all(t in table for t in (analyse(name) if params["analyzer"] == "word" else name))
    ]
    assert 0 < len(known) < expected.shape[1]
    assert names == list(reference.get_feature_names_out()[known])
    assert abs(counts - expected[:, known]).sum() == 0
    # a name means the same n-gram in both counts: the learnt terms' codes decode with the same table
    if terms.dtype == np.int64:
        assert set(terms) & set(learnt_terms)
        shared = np.intersect1d(terms, learnt_terms)
        assert code_strings(shared, tokens, params["ngram_range"][1]) == sorted(
            set(names) & set(code_strings(learnt_terms, tokens, params["ngram_range"][1]))
        )

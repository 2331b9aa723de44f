"""TF-IDF over n-grams with ``TfidfVectorizer``'s semantics and a count cache shared by every fold: the essays'
n-grams are counted once per run (numpy, ``ngram_counts``) and each fold only prunes and weights them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer

from daigt.errors import DaigtError
from daigt.schema import Invalid, check_ngram_range, sklearn_params_error
from daigt.text.bpe import bpe_ids, token_table
from daigt.text.ngram_counts import code_strings, count_ngrams, count_token_ngrams, ngram_range_of

# Vocabulary pruning is per fold; everything else decides which n-grams exist and is shared.
PRUNING_KEYS = ("min_df", "max_df", "max_features")
WEIGHTING_KEYS = ("sublinear_tf", "norm", "use_idf", "smooth_idf")  # applied to the counts per fit
# run-time accelerators of a fit, never saved: the count cache and what each fold derives from it
RUN_TIME = ("_cache", "_fold_column", "_fit_rows", "_fold_matrix", "_tokens", "_index")
WEIGHT_CHUNK_ROWS = 2048  # rows TF-IDF-weighted at a time: their transient copies, not the whole matrix's


@dataclass
class VectorizerSpec:
    """``params.vectorizer``: the ``TfidfVectorizer`` arguments a YAML config can set, with sklearn's names and
    defaults (sklearn's own check then judges their ranges). What the features receive is what differs from
    the default (``kwargs``), so a config that spells out a default counts and keys like one that leaves it."""

    analyzer: Literal["word", "char", "char_wb"] = "word"  # n-grams of words or of characters (char_wb: in words)
    ngram_range: tuple[int, ...] = (1, 1)  # [low, high]
    lowercase: bool = True  # lower-case before counting
    token_pattern: str = r"(?u)\b\w\w+\b"  # what a word is (analyzer: word): the default drops one-letter words
    strip_accents: Literal["ascii", "unicode"] | None = None  # fold accented letters
    stop_words: Literal["english"] | list[str] | None = None  # words dropped before counting (analyzer: word)
    min_df: int | float = 1  # terms in fewer essays are dropped (a float: a share of the fit's essays)
    max_df: int | float = 1.0  # terms in more essays are dropped (a float: a share)
    max_features: int | None = None  # keep only the most frequent terms
    binary: bool = False  # counts become 0/1
    norm: Literal["l1", "l2"] | None = "l2"  # each essay's row normalised
    use_idf: bool = True  # weight terms by inverse document frequency
    smooth_idf: bool = True  # document frequencies plus one (no zero division)
    sublinear_tf: bool = False  # 1 + log(count) instead of the count

    def check(self) -> None:
        check_ngram_range(self.ngram_range)
        problem = sklearn_params_error(TfidfVectorizer, self.kwargs())
        if problem:
            raise Invalid(problem)

    def kwargs(self) -> dict[str, Any]:
        """The arguments that differ from sklearn's defaults."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) != f.default}


class CountCache(NamedTuple):
    """Every prepared essay's n-gram counts, counted once per run and sliced by each fold (never saved)."""

    counts: sp.csr_matrix  # one row per distinct prepared essay, one column per term
    row_of: dict[str, int]  # essay text -> its row
    terms: np.ndarray  # the columns: rank codes (or strings)
    table: dict[str, int] | None  # the token table the codes were made with


def lookup(terms: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each rank code of ``query`` in the sorted codes ``terms``, -1 where absent."""
    if not len(terms):
        return np.full(len(query), -1, np.int64)
    position = np.minimum(np.searchsorted(terms, query), len(terms) - 1)
    return np.where(terms[position] == query, position, -1)


class NgramTfidf:
    """TfidfVectorizer semantics with a shared, fold-independent n-gram count cache.

    The texts' tokens are the vectorizer's analyzer, or the ids of ``tokenizer`` when one is set: its n-grams
    are then counted from ids and named by rank codes (``count_token_ngrams``), never spelled as strings.
    The analyzer's tokens are numbered in ``table``, learnt from the prepared (or fitted) essays: its n-grams
    are named by rank codes too wherever they fit in int64, and new essays' n-grams of tokens outside it are
    dropped before they are named (no fit can know them)."""

    def __init__(self, spec: VectorizerSpec) -> None:
        self.spec = spec
        self.counting = counting_arguments(spec)  # the arguments that decide the counts (not pruning, weighting)
        self.tokenizer: Any = None  # a tokenizers.Tokenizer: set with use_tokenizer
        self.codes = True  # n-grams named by rank codes where they fit (False: strings, as models saved before)
        self.table: dict[str, int] | None = None  # the analyzer's tokens -> ids (None: a tokenizer's, or old)
        self.terms: np.ndarray | None = None  # this fit's columns, sorted: n-gram strings or rank codes
        self.tfidf: TfidfTransformer | None = None  # this fit's IDF and weighting
        # the prepared essays' counts, their rows, terms, and the token table the terms' codes refer to
        self._cache: CountCache | None = None
        self._fold_column: np.ndarray | None = None
        self._fit_rows: np.ndarray | None = None  # the cache rows this fit read, sorted
        self._fold_matrix: sp.csr_matrix | None = None  # every cached essay weighted by this fit (first transform)
        self._tokens: np.ndarray | None = None
        self._index: pd.Index | None = None  # string terms as a hash index, built at the first lookup

    def prepare(self, texts: Sequence[str]) -> None:
        unique = list(dict.fromkeys(texts))
        # an n-gram in fewer than min_df of all these essays is in fewer than min_df of any fold's: never kept
        min_df = self.spec.min_df
        counts, terms = self.count(unique, min_df if isinstance(min_df, int) else 1, dtype=np.float32, learn=True)
        self._cache = CountCache(counts, {t: i for i, t in enumerate(unique)}, terms, self.table)
        self._fit_rows = self._fold_matrix = None

    def use_tokenizer(self, tokenizer: Any) -> None:
        """Count ``tokenizer``'s ids from now on: the token table (and the codes' meaning) is its own."""
        self.tokenizer, self._tokens = tokenizer, None

    def count(
        self, texts: Sequence[str], min_df: int = 1, dtype: type = np.float64, learn: bool = False
    ) -> tuple[sp.csr_matrix, np.ndarray]:
        """Document-term counts and the sorted terms: numpy where it reproduces sklearn exactly, else sklearn.
        The run-wide cache holds them in float32 (exact for counts below 2^24: a third less memory).
        ``learn``: these texts' tokens become the table that later counts read (prepare, or a fit without it)."""
        if self.tokenizer is not None:
            if self._tokens is None:
                self._tokens = token_table(self.tokenizer)
            ids = bpe_ids(self.tokenizer, texts)
            counts, terms = count_token_ngrams(
                ids, self._tokens, ngram_range_of(self.counting), " ", min_df, codes=self.codes
            )
            return counts.astype(dtype, copy=False), terms
        params = {**self.counting, "dtype": dtype}
        if learn:
            table: dict[str, int] = {}
            fast = count_ngrams(texts, params, min_df, table, codes=self.codes)
            self.table = table if fast is not None else self.table
        elif self.table is None:  # a model saved before tables: string terms, counted as they were
            fast = count_ngrams(texts, params, min_df)
        else:
            fast = count_ngrams(texts, params, min_df, self.table, fixed=True, codes=self.codes)
        if fast is not None:
            return fast
        counter = CountVectorizer(**self.counting, dtype=dtype)
        return counter.fit_transform(texts).tocsr(), counter.get_feature_names_out().astype(object)

    def term_strings(self) -> list[str]:
        """This fit's columns as n-gram strings (tokens joined by spaces), in column order."""
        assert self.terms is not None, "fit first"
        if self.terms.dtype == object:
            return self.terms.tolist()
        if self.tokenizer is None:
            assert self.table is not None, "rank codes without a token table"
            tokens = np.array(list(self.table), dtype=object)
        else:
            tokens = self._tokens if self._tokens is not None else token_table(self.tokenizer)
        return code_strings(self.terms, tokens, ngram_range_of(self.counting)[1])

    def table_key(self) -> str | None:
        """A fingerprint of the token table: counts made with one table are read alike by every fit sharing it."""
        if self.table is None:
            return None
        return hashlib.sha1("\0".join(self.table).encode("utf-8", "surrogatepass")).hexdigest()

    def _cached_rows(self, texts: Sequence[str]) -> np.ndarray | None:
        """The cache rows of ``texts``, or None when one of them was not prepared."""
        if self._cache is None:
            return None
        row_of = self._cache.row_of
        rows = np.fromiter((row_of.get(t, -1) for t in texts), np.int64, len(texts))
        return None if len(rows) == 0 or rows.min() < 0 else rows

    def fit(self, texts: Sequence[str]) -> None:
        """Vocabulary and IDF from the distinct ``texts``: an essay given twice (a test essay that is also a
        pseudo-labelled row, a copy identical to its original once tokenised) is one document, so min_df means
        "in this many different essays" and the corpus-level pruning in ``prepare`` is exact."""
        texts = list(dict.fromkeys(texts))
        rows = self._cached_rows(texts)
        fit_rows = None if rows is None else np.sort(rows)
        if fit_rows is not None and self._fit_rows is not None and np.array_equal(fit_rows, self._fit_rows):
            return  # the same essays, so the same terms and IDF (a pseudo-label round adds test essays it has read)
        self._fit_rows = self._fold_matrix = None
        if rows is None:  # no cache: count these documents directly (same result, slower across folds)
            counts, terms = self.count(texts, learn=True)
            entries = slice(None)
        else:  # document frequencies straight from the cache's index arrays: no per-fold copy of the counts
            counts, terms = self._cache.counts, self._cache.terms
            self.table = self._cache.table  # its codes' table, whatever an uncached fit of this object learnt since
            selected = np.zeros(counts.shape[0], bool)
            selected[rows] = True
            entries = np.repeat(selected, np.diff(counts.indptr))
        dfs = np.bincount(counts.indices[entries], minlength=counts.shape[1])  # duplicates summed: nnz = docs

        def tfs() -> np.ndarray:
            return np.bincount(counts.indices[entries], counts.data[entries], counts.shape[1])

        kept = self._prune(dfs, len(texts), tfs)
        self._fold_column = None
        if rows is not None:  # cache column -> this fit's column (-1: pruned), for every transform of the fold
            self._fit_rows = fit_rows
            self._fold_column = np.full(counts.shape[1], -1, np.int32 if len(kept) < 2**31 else np.int64)
            self._fold_column[kept] = np.arange(len(kept))
        smooth = int(self.spec.smooth_idf)
        self.terms, self._index = terms[kept], None
        self.tfidf = TfidfTransformer(
            norm=self.spec.norm, use_idf=self.spec.use_idf,
            smooth_idf=bool(smooth), sublinear_tf=self.spec.sublinear_tf,
        )  # fmt: skip
        self.tfidf.idf_ = np.log((len(texts) + smooth) / (dfs[kept] + smooth)) + 1.0

    def _prune(self, dfs: np.ndarray, n_docs: int, term_frequencies: Callable[[], np.ndarray]) -> np.ndarray:
        """Columns kept by min_df / max_df / max_features, exactly as sklearn's _limit_features (n-grams absent
        from the fit documents never are)."""
        min_df, max_df = self.spec.min_df, self.spec.max_df
        low = min_df if isinstance(min_df, int) else min_df * n_docs
        high = max_df if isinstance(max_df, int) else max_df * n_docs
        present = np.flatnonzero(dfs > 0)
        mask = (dfs[present] >= low) & (dfs[present] <= high)
        limit = self.spec.max_features
        if limit is not None and mask.sum() > limit:
            tfs = term_frequencies()[present]
            chosen = np.where(mask)[0][(-tfs[mask]).argsort()[:limit]]
            mask = np.zeros_like(mask)
            mask[chosen] = True
        if not mask.any():
            raise DaigtError("TF-IDF vocabulary is empty after min_df/max_df: lower vectorizer.min_df")
        return present[mask]

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        assert self.terms is not None and self.tfidf is not None, "fit first"
        rows = self._cached_rows(texts) if self._fold_column is not None else None
        if rows is None:
            return self.weighted(*self.count(texts))
        if self._fold_matrix is None:  # a fold transforms nearly every cached essay, some of them several times
            self._fold_matrix = self._weighted(self._cache.counts, self._fold_column)
        return self._fold_matrix[rows]

    def weighted(self, counts: sp.csr_matrix, terms: np.ndarray) -> sp.csr_matrix:
        """TF-IDF of counts over ``terms`` in this fit's columns (n-grams it does not know are dropped)."""
        return self._weighted(counts, self.columns(terms))

    def _weighted(self, counts: sp.csr_matrix, column_of: np.ndarray, rows: np.ndarray | None = None) -> sp.csr_matrix:
        """One float64 matrix of the kept columns, built from the counts' arrays (O(non-zeros), not
        O(vocabulary)) and TF-IDF-weighted. ``column_of``: this fit's column of each counted column, -1 where it
        has none; increasing where it is not (both term lists are sorted), so rows stay sorted. ``rows``: take
        only these rows of ``counts``.

        ``WEIGHT_CHUNK_ROWS`` rows at a time, written into output arrays sized by the rows' entries and shrunk in
        place at the end: the whole matrix's transients (a row slice, column ids, a mask, the IDF gather) were
        ~2x the result at the peak of a fold's fit. The weighting is row-wise (log, IDF, row norm), so chunks
        give the very same values."""
        assert self.terms is not None and self.tfidf is not None, "fit first"
        n_rows = counts.shape[0] if rows is None else len(rows)
        lengths = np.diff(counts.indptr)
        bound = int(lengths.sum() if rows is None else lengths[rows].sum())  # kept entries are at most these
        index = np.int32 if len(self.terms) < 2**31 and bound < 2**31 else np.int64  # 4 bytes per entry
        data, indices = np.empty(bound, np.float64), np.empty(bound, index)
        indptr = np.zeros(n_rows + 1, index)
        column_map = column_of.astype(index, copy=False)
        filled = 0
        for start in range(0, n_rows, WEIGHT_CHUNK_ROWS):
            stop = min(start + WEIGHT_CHUNK_ROWS, n_rows)
            part = counts[start:stop] if rows is None else counts[rows[start:stop]]
            column = column_map[part.indices]
            keep = column >= 0
            chunk_indptr = np.concatenate([[0], np.cumsum(keep, dtype=index)])[part.indptr]
            chunk = sp.csr_matrix(
                (part.data[keep].astype(np.float64), column[keep], chunk_indptr), shape=(stop - start, len(self.terms))
            )
            del part, column, keep
            chunk = self.tfidf.transform(chunk, copy=False)
            data[filled : filled + chunk.nnz] = chunk.data
            indices[filled : filled + chunk.nnz] = chunk.indices
            indptr[start + 1 : stop + 1] = filled + chunk.indptr[1:]
            filled += chunk.nnz
        data.resize(filled, refcheck=False)  # in place: no second copy of the matrix
        indices.resize(filled, refcheck=False)
        return sp.csr_matrix((data, indices, indptr), shape=(n_rows, len(self.terms)))

    def columns(self, terms: np.ndarray) -> np.ndarray:
        """This fit's column of each term, -1 where it has none: a binary search of rank codes, a hash index
        (one C loop, built once) of strings."""
        assert self.terms is not None, "fit first"
        if self.terms.dtype != object and terms.dtype != object:
            return lookup(self.terms, terms)
        if self._index is None:
            self._index = pd.Index(self.terms, dtype=object)
        return self._index.get_indexer(terms)

    def __getstate__(self) -> dict[str, Any]:
        """The count cache is a run-time accelerator, never saved. String terms (10^5-10^6 n-grams) are saved as
        one string plus lengths: pickling them as a list of strings took seconds per fold."""
        state = {**self.__dict__, **dict.fromkeys(RUN_TIME)}
        if self.terms is not None and self.terms.dtype == object:
            terms = self.terms.tolist()
            state["terms"] = ("".join(terms), np.fromiter(map(len, terms), dtype=np.int64, count=len(terms)))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = migrate_saved_state(state)
        self.__dict__.update({**dict.fromkeys((*RUN_TIME, "table")), **state})  # older saves lack some
        if isinstance(self.terms, tuple):
            blob, lengths = self.terms
            ends = np.cumsum(lengths).tolist()
            self.terms = np.array([blob[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)], dtype=object)


def counting_arguments(spec: VectorizerSpec) -> dict[str, Any]:
    """What decides which n-grams an essay has: the spec's non-default arguments less pruning and weighting."""
    kwargs = spec.kwargs()
    if "ngram_range" in kwargs:
        kwargs["ngram_range"] = ngram_range_of(kwargs)  # what sklearn accepts where it counts instead
    return {k: v for k, v in kwargs.items() if k not in PRUNING_KEYS and k not in WEIGHTING_KEYS}


def migrate_saved_state(state: dict[str, Any]) -> dict[str, Any]:
    """A saved ``NgramTfidf`` state of any older format in today's shape; every older format is handled here.

    - Saved before the typed spec: the vectorizer arguments as a ``params`` dict, made a ``VectorizerSpec``.
    - Saved before the fold column map: a run-time ``_kept`` field, dropped.
    - Saved before terms and codes: a fitted ``TfidfVectorizer`` (``vectorizer``) with string terms, taken in
      its column order (``vocabulary_`` maps a term to its column)."""
    state = dict(state)
    state.pop("_kept", None)
    if "params" in state:
        state["spec"] = VectorizerSpec(**state.pop("params"))
    vectorizer = state.pop("vectorizer", None)
    if vectorizer is not None:
        terms = state.pop("_terms", None)
        if terms is None:
            terms = np.array(sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get), dtype=object)
        state.update(codes=False, terms=terms, tfidf=vectorizer._tfidf, tokenizer=None)
    return state

"""TF-IDF n-gram family: word / char n-grams into MultinomialNB, SGD and LogisticRegression.

Counting n-grams is most of the cost and does not depend on labels or folds, so ``prepare`` counts every
text of the run once; each fold then picks its vocabulary (min_df, max_df, max_features) and IDF from its
own fit documents. The result equals fitting sklearn's TfidfVectorizer per fold (tested), at a fraction
of the time. Texts that were not prepared are counted the same way and looked up in the fold's terms.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import ComplementNB, MultinomialNB

from daigt.config import frame_fingerprint
from daigt.errors import DaigtError
from daigt.families.base import FitContext, ModelFamily, expand_soft_labels, fittable_texts
from daigt.families.bpe import TokenizerSpec, bpe_ids, token_table, train_bpe
from daigt.families.ngram_counts import code_strings, count_ngrams, count_token_ngrams
from daigt.schema import Invalid, keys_from, unknown_key_message

CLASSIFIERS: dict[str, type] = {
    "multinomial_nb": MultinomialNB,
    "complement_nb": ComplementNB,
    "sgd": SGDClassifier,
    "logistic_regression": LogisticRegression,
}
# Vocabulary pruning is per fold; everything else decides which n-grams exist and is shared.
PRUNING_KEYS = ("min_df", "max_df", "max_features")
MODEL_FILE = "tfidf.joblib"
# zlib level of the compact (packaged) model: lossless, a fold of tfidf_bpe 92 -> ~21 MB (its IDF, codes and
# weights repeat a lot); what makes the offline Kaggle package small enough to upload. Training saves uncompressed:
# compressing cost ~1 s per fold, 5.6 s of a 47 s tfidf_bpe run (docs/benchmarks.md, "Where the time goes")
COMPACT_COMPRESSION = 3
FIT_ONLY = ("feature_count_", "feature_all_")  # fitted attributes prediction never reads (naive Bayes: terms floats)
WEIGHT_CHUNK_ROWS = 2048  # rows TF-IDF-weighted at a time: their transient copies, not the whole matrix's
LETTER_RUNS = re.compile(r"([A-Za-z]+)")  # captured: re.split keeps them as the odd pieces
FUNCTION_WORDS = frozenset(ENGLISH_STOP_WORDS) | {"i"}


def _word_shape(word: str) -> str:
    return word if word.lower() in FUNCTION_WORDS else ("W" if word[0].isupper() else "w")


_SHAPES: dict[str, str] = {}  # letter run -> what the view makes of it: one dict lookup per word after the first
SHAPES_KEPT = 500_000  # distinct letter runs remembered (~60 MB); the memo starts over beyond that


def function_word_view(text: str) -> str:
    """Keep function words (sklearn's English stop-word list, plus "i") and punctuation; every other word
    becomes its case shape ("W" or "w"). N-grams of what is left describe syntax and punctuation habits
    independent of topic ("text distortion", Stamatatos 2013), a view the plain n-gram models do not have.
    Its vectorizer needs a token_pattern that keeps one-letter tokens (sklearn's default drops "w").
    The text is split at letter runs and each run looked up in a memo: ~1.5x a regex substitution per word."""
    pieces = LETTER_RUNS.split(text)  # odd pieces are the letter runs
    if len(_SHAPES) > SHAPES_KEPT:
        _SHAPES.clear()
    pieces[1::2] = [_SHAPES[w] if w in _SHAPES else _SHAPES.setdefault(w, _word_shape(w)) for w in pieces[1::2]]
    return "".join(pieces)


TEXT_VIEWS: dict[str, Callable[[str], str] | None] = {"raw": None, "function_words": function_word_view}


def lookup(terms: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each rank code of ``query`` in the sorted codes ``terms``, -1 where absent."""
    if not len(terms):
        return np.full(len(query), -1, np.int64)
    position = np.minimum(np.searchsorted(terms, query), len(terms) - 1)
    return np.where(terms[position] == query, position, -1)


def sklearn_params_error(estimator: Any, params: Mapping[str, Any]) -> str | None:
    """sklearn's own check of keyword arguments (types and ranges), as one line; None when they are valid."""
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        estimator(**params)._validate_params()
    except (InvalidParameterError, TypeError, ValueError) as err:
        return " ".join(str(err).split())
    return None


@dataclass
class ClassifierSpec:
    kind: str | None = None  # a key of CLASSIFIERS; default: the entry's own name
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)  # the classifier's keyword arguments


BPE_TOKEN_PATTERN = r"(?u)\S+"  # BPE tokens are joined by spaces and never contain one (byte-level alphabet)


@dataclass
class TfidfParams:
    vectorizer: dict[str, Any] = keys_from(lambda: TfidfVectorizer().get_params())  # TfidfVectorizer arguments
    classifiers: dict[str, ClassifierSpec] = field(default_factory=dict)  # averaged by weight
    text_view: Literal["raw", "function_words"] = "raw"
    fit_vocabulary_on: Literal["train", "test", "train+test"] = "train"
    tokenizer: TokenizerSpec | None = None  # null: the vectorizer's own analyzer

    def counting(self) -> dict[str, Any]:
        """The vectorizer arguments, with what a tokenizer implies (its tokens, as they are)."""
        if self.tokenizer is None:
            return dict(self.vectorizer)
        return {**self.vectorizer, "analyzer": "word", "token_pattern": BPE_TOKEN_PATTERN, "lowercase": False}

    def check(self) -> None:
        if self.tokenizer is not None:
            fixed = sorted({"analyzer", "token_pattern", "lowercase"} & set(self.vectorizer))
            if fixed:
                raise Invalid(f"with a tokenizer the vectorizer reads its tokens: leave {fixed} unset", "vectorizer")
            if self.text_view != "raw":
                raise Invalid("a tokenizer reads the raw text: set text_view: raw", "tokenizer")
        vectorizer = dict(self.vectorizer)
        if "ngram_range" in vectorizer:
            vectorizer["ngram_range"] = tuple(vectorizer["ngram_range"])
        problem = sklearn_params_error(TfidfVectorizer, vectorizer)
        if problem:
            raise Invalid(problem, "vectorizer")
        if not self.classifiers:
            raise Invalid("needs at least one entry, e.g. sgd: {kind: sgd}", "classifiers")
        for name, spec in self.classifiers.items():
            kind = spec.kind or name
            if kind not in CLASSIFIERS:
                raise Invalid(f"unknown kind '{kind}' (known: {', '.join(CLASSIFIERS)})", f"classifiers.{name}.kind")
            allowed = CLASSIFIERS[kind]().get_params()
            for key in spec.params:
                if key not in allowed:
                    raise Invalid(unknown_key_message(key, allowed), f"classifiers.{name}.params.{key}")
            problem = sklearn_params_error(CLASSIFIERS[kind], spec.params)
            if problem:
                raise Invalid(problem, f"classifiers.{name}.params")
            if not hasattr(CLASSIFIERS[kind](**spec.params), "predict_proba"):
                raise Invalid(
                    f"{kind} gives no probabilities with these params (sgd: set loss: modified_huber or log_loss)",
                    f"classifiers.{name}.params",
                )


class NgramTfidf:
    """TfidfVectorizer semantics with a shared, fold-independent n-gram count cache.

    The texts' tokens are the vectorizer's analyzer, or the ids of ``tokenizer`` when one is set: its n-grams
    are then counted from ids and named by rank codes (``count_token_ngrams``), never spelled as strings.
    The analyzer's tokens are numbered in ``table``, learnt from the prepared (or fitted) essays: its n-grams
    are named by rank codes too wherever they fit in int64, and new essays' n-grams of tokens outside it are
    dropped before they are named (no fit can know them)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        params = dict(params)
        if "ngram_range" in params:
            params["ngram_range"] = tuple(params["ngram_range"])
        self.params = params
        self.counting = {
            k: v
            for k, v in params.items()
            if k not in PRUNING_KEYS and k not in ("sublinear_tf", "norm", "use_idf", "smooth_idf")
        }
        self.tokenizer: Any = None  # a tokenizers.Tokenizer: set with use_tokenizer
        self.codes = True  # n-grams named by rank codes where they fit (False: strings, as models saved before)
        self.table: dict[str, int] | None = None  # the analyzer's tokens -> ids (None: a tokenizer's, or old)
        self.terms: np.ndarray | None = None  # this fit's columns, sorted: n-gram strings or rank codes
        self.tfidf: TfidfTransformer | None = None  # this fit's IDF and weighting
        # the prepared essays' counts, their rows, terms, and the token table the terms' codes refer to
        self._cache: tuple[sp.csr_matrix, dict[str, int], np.ndarray, dict[str, int] | None] | None = None
        self._fold_column: np.ndarray | None = None
        self._tokens: np.ndarray | None = None
        self._index: pd.Index | None = None  # string terms as a hash index, built at the first lookup

    def prepare(self, texts: Sequence[str]) -> None:
        unique = list(dict.fromkeys(texts))
        # an n-gram in fewer than min_df of all these essays is in fewer than min_df of any fold's: never kept
        min_df = self.params.get("min_df", 1)
        counts, terms = self.count(unique, min_df if isinstance(min_df, int) else 1, dtype=np.float32, learn=True)
        self._cache = (counts, {t: i for i, t in enumerate(unique)}, terms, self.table)

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
            ngram_range = self.counting.get("ngram_range", (1, 1))
            counts, terms = count_token_ngrams(ids, self._tokens, ngram_range, " ", min_df, codes=self.codes)
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
        return code_strings(self.terms, tokens, self.counting.get("ngram_range", (1, 1))[1])

    def table_key(self) -> str | None:
        """A fingerprint of the token table: counts made with one table are read alike by every fit sharing it."""
        if self.table is None:
            return None
        return hashlib.sha1("\0".join(self.table).encode("utf-8", "surrogatepass")).hexdigest()

    def _cached_rows(self, texts: Sequence[str]) -> np.ndarray | None:
        """The cache rows of ``texts``, or None when one of them was not prepared."""
        if self._cache is None:
            return None
        row_of = self._cache[1]
        rows = np.fromiter((row_of.get(t, -1) for t in texts), np.int64, len(texts))
        return None if len(rows) == 0 or rows.min() < 0 else rows

    def fit(self, texts: Sequence[str]) -> None:
        """Vocabulary and IDF from the distinct ``texts``: an essay given twice (a test essay that is also a
        pseudo-labelled row, a copy identical to its original once tokenised) is one document, so min_df means
        "in this many different essays" and the corpus-level pruning in ``prepare`` is exact."""
        texts = list(dict.fromkeys(texts))
        rows = self._cached_rows(texts)
        if rows is None:  # no cache: count these documents directly (same result, slower across folds)
            counts, terms = self.count(texts, learn=True)
            entries = slice(None)
        else:  # document frequencies straight from the cache's index arrays: no per-fold copy of the counts
            counts, terms = self._cache[0], self._cache[2]
            self.table = self._cache[3]  # its codes' table, whatever an uncached fit of this object learnt since
            selected = np.zeros(counts.shape[0], bool)
            selected[rows] = True
            entries = np.repeat(selected, np.diff(counts.indptr))
        dfs = np.bincount(counts.indices[entries], minlength=counts.shape[1])  # duplicates summed: nnz = docs

        def tfs() -> np.ndarray:
            return np.bincount(counts.indices[entries], counts.data[entries], counts.shape[1])

        kept = self._prune(dfs, len(texts), tfs)
        self._fold_column = None
        if rows is not None:  # cache column -> this fit's column (-1: pruned), for every transform of the fold
            self._fold_column = np.full(counts.shape[1], -1, np.int32 if len(kept) < 2**31 else np.int64)
            self._fold_column[kept] = np.arange(len(kept))
        smooth = int(self.params.get("smooth_idf", True))
        self.terms, self._index = terms[kept], None
        self.tfidf = TfidfTransformer(
            norm=self.params.get("norm", "l2"), use_idf=self.params.get("use_idf", True),
            smooth_idf=bool(smooth), sublinear_tf=self.params.get("sublinear_tf", False),
        )  # fmt: skip
        self.tfidf.idf_ = np.log((len(texts) + smooth) / (dfs[kept] + smooth)) + 1.0

    def _prune(self, dfs: np.ndarray, n_docs: int, term_frequencies: Callable[[], np.ndarray]) -> np.ndarray:
        """Columns kept by min_df / max_df / max_features, exactly as sklearn's _limit_features (n-grams absent
        from the fit documents never are)."""
        min_df, max_df = self.params.get("min_df", 1), self.params.get("max_df", 1.0)
        low = min_df if isinstance(min_df, int) else min_df * n_docs
        high = max_df if isinstance(max_df, int) else max_df * n_docs
        present = np.flatnonzero(dfs > 0)
        mask = (dfs[present] >= low) & (dfs[present] <= high)
        limit = self.params.get("max_features")
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
        return self._weighted(self._cache[0], self._fold_column, rows)

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
        state = {**self.__dict__, "_cache": None, "_fold_column": None, "_tokens": None, "_index": None}
        if self.terms is not None and self.terms.dtype == object:
            terms = self.terms.tolist()
            state["terms"] = ("".join(terms), np.fromiter(map(len, terms), dtype=np.int64, count=len(terms)))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.pop("_kept", None)  # models saved before the fold column map had this run-time field
        vectorizer = state.pop("vectorizer", None)
        if vectorizer is not None:  # saved before terms and codes: a fitted TfidfVectorizer, string terms
            terms = state.pop("_terms", None) or np.array(list(vectorizer.vocabulary_), dtype=object)
            state.update(codes=False, terms=terms, tfidf=vectorizer._tfidf, tokenizer=None)
        self.__dict__.update({"_fold_column": None, "_tokens": None, "_index": None, "table": None, **state})
        if isinstance(self.terms, tuple):
            blob, lengths = self.terms
            ends = np.cumsum(lengths).tolist()
            self.terms = np.array([blob[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)], dtype=object)


class TfidfFamily(ModelFamily):
    """Weighted average of linear classifiers on one TF-IDF representation."""

    Params = TfidfParams

    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.features = NgramTfidf(self.params.counting())
        self.text_view = self.params.text_view
        self._views: dict[str, str] = {}
        self._corpus: list[str] = []  # the prepared essays (raw text), to re-count under a new tokenizer
        self._bpe_key: str | None = None  # fingerprint of the essays the tokenizer was trained on
        self.vocabulary_from = self.params.fit_vocabulary_on
        specs = self.params.classifiers
        self.weights = {name: float(spec.weight) for name, spec in specs.items()}
        self.classifiers = {name: self._build(name) for name in specs}

    def _build(self, name: str) -> Any:
        spec = self.params.classifiers[name]
        cls = CLASSIFIERS[spec.kind or name]
        kwargs = dict(spec.params)
        if "random_state" in cls().get_params():
            kwargs.setdefault("random_state", self.seed)
        return cls(**kwargs)

    @property
    def bpe(self) -> Any:
        """The tokenizers.Tokenizer once trained (the features count its ids), else None."""
        return self.features.tokenizer

    def _view(self) -> Callable[[list[str]], list[str]] | None:
        """Raw texts -> the texts the vectorizer reads (None: the raw texts themselves, which a tokenizer reads)."""
        view = TEXT_VIEWS[self.text_view]
        return None if view is None else lambda texts: [view(t) for t in texts]

    def texts(self, frame: pd.DataFrame) -> list[str]:
        """The essays as this model reads them (its text view or tokenizer); views made in ``prepare`` are reused."""
        view = self._view()
        raw = frame["text"].tolist()
        if view is None:
            return raw
        missing = [t for t in dict.fromkeys(raw) if t not in self._views]
        made = dict(zip(missing, view(missing), strict=True)) if missing else {}
        return [self._views[t] if t in self._views else made[t] for t in raw]

    def prepare(self, corpus: pd.DataFrame) -> None:
        self._corpus = list(dict.fromkeys(corpus["text"]))
        spec = self.params.tokenizer
        if spec is not None and spec.fit_on == "train+test":
            self._train_tokenizer(fittable_texts(corpus))
        elif spec is None:
            self._count_corpus()
        # fit_on: test is trained (and the corpus counted) at the first fit, which knows the test essays

    def _count_corpus(self) -> None:
        view = self._view()
        self._views = dict(zip(self._corpus, view(self._corpus), strict=True)) if view else {}
        if self._corpus:
            self.features.prepare(self.texts(pd.DataFrame({"text": self._corpus})))

    def _fit_tokenizer(self, train: pd.DataFrame, context: FitContext) -> None:
        """The tokenizer for this fit: prepared with the run (train+test), or trained on the test essays on the
        first fit and kept while they stay the same; without prepare, on this fit's own essays."""
        spec = self.params.tokenizer
        assert spec is not None
        test = context.unlabeled_texts()
        if spec.fit_on == "test":
            if not test:
                raise DaigtError("tokenizer.fit_on: test needs test essays (pass --test)")
            self._train_tokenizer(test)
        elif self.bpe is None:  # not prepared: the essays at hand
            self._train_tokenizer(train["text"].tolist() + test)

    def _train_tokenizer(self, texts: list[str]) -> None:
        """Train on ``texts`` unless the tokenizer already was; then count the prepared essays in its tokens."""
        key = frame_fingerprint(pd.DataFrame({"text": texts}), ["text"])
        if key == self._bpe_key:
            return
        assert self.params.tokenizer is not None
        self.features.use_tokenizer(train_bpe(texts, self.params.tokenizer))
        self._bpe_key = key
        self._count_corpus()

    def __getstate__(self) -> dict[str, Any]:  # views and the corpus are a run-time cache of the prepared essays
        return {**self.__dict__, "_views": {}, "_corpus": [], "classifiers": _for_prediction(self.classifiers)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        tokenizer = state.pop("bpe", None)  # saved when the family kept the tokenizer and gave token views
        self.__dict__.update(state)
        if tokenizer is not None and self.features.tokenizer is None:
            self.features.use_tokenizer(tokenizer)

    def fit(self, train: pd.DataFrame, context: FitContext) -> None:
        if self.params.tokenizer is not None:
            self._fit_tokenizer(train, context)
        vocabulary_texts = {
            "train": self.texts(train),
            "test": [] if context.unlabeled is None else self.texts(context.unlabeled),
        }
        vocabulary_texts["train+test"] = vocabulary_texts["train"] + vocabulary_texts["test"]
        fit_texts = vocabulary_texts[self.vocabulary_from]
        if not fit_texts:
            raise DaigtError("fit_vocabulary_on: test needs test essays (pass --test)")
        self.features.fit(fit_texts)
        rows, targets, weights = expand_soft_labels(train)
        matrix = self.features.transform(self.texts(rows))
        for classifier in self.classifiers.values():
            classifier.fit(matrix, targets, sample_weight=weights)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(self.features.transform(self.texts(frame)))

    def predict_matrix(self, matrix: sp.csr_matrix) -> np.ndarray:
        total = sum(self.weights.values())
        return (
            sum(self.weights[name] * clf.predict_proba(matrix)[:, 1] for name, clf in self.classifiers.items()) / total
        )

    @classmethod
    def fold_predictor(cls, models: Sequence[ModelFamily]) -> Callable[[pd.DataFrame], np.ndarray]:
        """Score new essays with all folds from one n-gram count: the folds share the analyzer and differ only
        in vocabulary, so the essays' n-grams are counted once and each fold looks up the distinct n-grams in
        its own sorted terms: each fold's own TF-IDF matrix (same values) at a fraction of the cost of
        analysing the text K times, with no union vocabulary to build at load."""
        folds = [m for m in models if isinstance(m, TfidfFamily) and m.features.terms is not None]
        analysers = {
            (repr(sorted(f.counting.items())), m.text_view, m._bpe_key, f.codes, f.table_key())
            for m in folds
            for f in [m.features]
        }
        if len(folds) != len(models) or len(analysers) != 1:
            return super().fold_predictor(models)  # folds that count differently: each fold on its own
        counter = folds[0]

        def predict(frame: pd.DataFrame) -> np.ndarray:
            counts, terms = counter.features.count(counter.texts(frame))
            return np.mean([m.predict_matrix(m.features.weighted(counts, terms)) for m in folds], axis=0)

        return predict

    has_compact_form = True

    def save(self, directory: Path) -> None:
        joblib.dump(self, directory / MODEL_FILE)

    def save_compact(self, directory: Path) -> None:
        joblib.dump(self, directory / MODEL_FILE, compress=COMPACT_COMPRESSION)

    @classmethod
    def load(cls, directory: Path) -> TfidfFamily:
        return joblib.load(directory / MODEL_FILE)


def _for_prediction(classifiers: dict[str, Any]) -> dict[str, Any]:
    """Shallow copies of the fitted classifiers without the attributes only fitting reads (same predictions)."""
    out = {}
    for name, classifier in classifiers.items():
        dropped = [a for a in FIT_ONLY if hasattr(classifier, a)]
        if dropped:
            classifier = copy.copy(classifier)
            for attribute in dropped:
                delattr(classifier, attribute)
        out[name] = classifier
    return out

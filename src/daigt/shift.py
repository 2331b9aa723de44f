"""How far an essay is from the essays the ensemble was trained on: the ``in_domain`` score in [0, 1].

A detector only knows the writers it was trained on. Outside that population (other prompts, other kinds of
text, other writers) its scores mean little, and the failure is lopsided: unfamiliar human writing reads as
"not like our humans", i.e. as AI. So every essay gets a label-free shift score, and decisions abstain on the
essays the training set does not cover (decisions.py).

The score: content-word TF-IDF (English stop words removed, so it follows what an essay is about and how it is
worded, not the grammar every text shares), then the mean cosine similarity to the ``neighbours`` nearest
training essays **of each class**. An essay's similarity to a class is turned into its percentile among that
class's own essays, scored the same way out of fold; the better of the two classes is its nearness, and
``in_domain`` is the percentile of that nearness among every training essay out of fold. So ``in_domain = 0.02``
reads "only 2 % of the training essays, held out, look less like the training set than this one", and flagging
``in_domain < share`` flags ``share`` of the training population by construction, measured on essays the
scorer was not fitted on.
"""

from __future__ import annotations

import contextlib
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import normalize

from daigt.config import fingerprint, frame_fingerprint
from daigt.data import binary_labels
from daigt.errors import DaigtError
from daigt.metrics import auc
from daigt.schema import Invalid, check_ngram_range, to_dict
from daigt.text.views import function_word_view
from essayio import atomic

CLASSES = ("human", "ai")
STYLE_TOKENS = r"(?u)\b\w+\b|[^\w\s]"  # the function_words view: one-letter shapes and punctuation count
CHUNK_ROWS = 512  # essays whose similarities are held at once (a dense chunk x reference matrix)
MIN_TEST_FOR_SHIFT = 20  # smaller test files (Kaggle's 3-row placeholder) are not judged far or near
SCORER_CACHE = "shift-scorer-{key}.npz"  # in the project's cache dir: a scorer fitted on these essays and config


@dataclass
class ShiftConfig:
    """``shift:`` in configs/blend.yaml: the label-free scorer behind ``in_domain``."""

    # content: what a text is about (a new prompt is far); function_words: how it is written, every content
    # word masked to its case shape (text/views.py), so a new prompt in a known genre is near and a new genre,
    # register or kind of writer is far
    view: Literal["content", "function_words"] = "content"
    ngram_range: list[int] = field(default_factory=lambda: [1, 2])  # word n-grams of the view
    stop_words: bool = True  # drop English stop words: follow content and wording, not shared grammar
    min_df: int = 3  # a term in fewer training essays is noise (names, typos)
    max_df: float = 0.5  # a term in more is as good as a stop word
    max_features: int = 50_000  # the view's vocabulary size (the most frequent terms)
    neighbours: int = 10  # nearest training essays averaged per class
    max_reference: int = 4000  # training essays kept per class (sampled): bounds predict's cost at any data size
    seed: int = 0  # the reference sample's draw and the adversarial validation's folds
    # a test set with more of its essays out of domain than this is far from train: blend warns, and train_fold
    # skips the transductive steps (pseudo-labels, vocabularies and tokenizers fitted on test) for it
    far_test_share: float = 0.25

    def check(self) -> None:
        check_ngram_range(self.ngram_range)
        if self.view == "function_words" and self.stop_words:
            raise Invalid("the function_words view is made of stop words: set stop_words: false", "stop_words")
        if not 0 <= self.far_test_share <= 1:
            raise Invalid(f"must lie in [0, 1], got {self.far_test_share}", "far_test_share")
        if not 0 < self.max_df <= 1:
            raise Invalid(f"must lie in (0, 1], got {self.max_df}", "max_df")
        for key in ("min_df", "max_features", "neighbours", "max_reference"):
            if getattr(self, key) < 1:
                raise Invalid(f"must be >= 1, got {getattr(self, key)}", key)


def _counter(cfg: ShiftConfig, vocabulary: list[str] | None = None, min_df: int = 1) -> CountVectorizer:
    """Counts of the configured n-grams: over a fixed vocabulary, or every n-gram in ``min_df`` essays."""
    style = cfg.view == "function_words"  # masked words ("w", "W") and punctuation marks are the tokens
    return CountVectorizer(
        ngram_range=tuple(cfg.ngram_range),
        stop_words="english" if cfg.stop_words else None,
        min_df=min_df,
        vocabulary=vocabulary,
        dtype=np.float32,
        preprocessor=function_word_view if style else None,
        token_pattern=STYLE_TOKENS if style else r"(?u)\b\w\w+\b",
    )


def count_texts(texts: pd.Series | list[str], cfg: ShiftConfig) -> tuple[sp.csr_matrix, np.ndarray]:
    """Every n-gram of the view in ``texts`` (rows: texts, columns: terms) and the terms: what a fit selects its
    space from. Rows of a larger counting give the same fit as counting the rows alone (terms a fit's rows
    lack have no document frequency there, so no space keeps them)."""
    counter = _counter(cfg, min_df=1)
    try:
        counts = counter.fit_transform(texts).tocsr()
    except ValueError:  # scikit-learn's "empty vocabulary"
        raise DaigtError("shift: the training essays have no content words; set shift.stop_words: false") from None
    return counts, counter.get_feature_names_out()


@dataclass
class TextSpace:
    """Sublinear TF-IDF over a fixed vocabulary, rows L2-normalised (cosine = dot product)."""

    cfg: ShiftConfig
    vocabulary: list[str]
    idf: np.ndarray

    @classmethod
    def from_counts(cls, counts: sp.csr_matrix, terms: np.ndarray, cfg: ShiftConfig) -> tuple[TextSpace, np.ndarray]:
        """The space a vectorizer fitted on these rows would learn (min_df, max_df, then the max_features most
        frequent terms), from counts over a larger vocabulary; and the columns it keeps. Counting every essay
        once and selecting per fold is what makes cross-fitting cheap."""
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        keep = np.flatnonzero((df >= cfg.min_df) & (df <= cfg.max_df * counts.shape[0]))
        if not len(keep):  # a tiny or uniform corpus: every term it has, rather than none
            keep = np.flatnonzero(df > 0)
        if len(keep) > cfg.max_features:
            frequency = np.asarray(counts[:, keep].sum(axis=0)).ravel()
            keep = np.sort(keep[np.argsort(-frequency, kind="stable")[: cfg.max_features]])
        idf = (np.log((1 + counts.shape[0]) / (1 + df[keep])) + 1).astype(np.float32)
        return cls(cfg, terms[keep].tolist(), idf), keep

    @cached_property
    def counter(self) -> CountVectorizer:
        """Built once: a counter validates its vocabulary on every call it is rebuilt for."""
        return _counter(self.cfg, self.vocabulary)

    def transform(self, texts: pd.Series | list[str]) -> sp.csr_matrix:
        return self.weighted(self.counter.transform(texts).tocsr())

    def weighted(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Counts over this space's vocabulary -> sublinear TF-IDF, L2-normalised rows."""
        counts = counts.astype(np.float32)
        counts.data = np.log1p(counts.data)
        return normalize(counts @ sp.diags(self.idf), copy=False).astype(np.float32).tocsr()


def nearest_similarity(rows: sp.csr_matrix, reference_t: sp.csc_matrix, k: int) -> np.ndarray:
    """Mean cosine similarity of each row to its ``k`` most similar reference rows (``reference_t``: the
    reference rows transposed, terms x essays), in chunks of rows."""
    k = min(k, reference_t.shape[1])
    out = np.zeros(rows.shape[0], dtype=np.float64)
    ref_t = reference_t
    for start in range(0, rows.shape[0], CHUNK_ROWS):
        sims = (rows[start : start + CHUNK_ROWS] @ ref_t).toarray()
        out[start : start + CHUNK_ROWS] = -np.partition(-sims, k - 1, axis=1)[:, :k].mean(axis=1)
    return out


def _ecdf(sorted_reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``sorted_reference`` at or below each value."""
    return np.searchsorted(sorted_reference, values, side="right") / max(1, len(sorted_reference))


def _sample(index: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(index, limit, replace=False)) if len(index) > limit else index


@dataclass
class ShiftScorer:
    """Fitted on the training essays (texts, labels, folds); scores any essays' ``in_domain``."""

    space: TextSpace
    references: dict[str, sp.csr_matrix]  # per class: the training essays compared against
    class_oof: dict[str, np.ndarray]  # per class: its own essays' out-of-fold similarity to it, sorted
    nearness_oof: np.ndarray  # every training essay's out-of-fold nearness (best class percentile), sorted
    oof_in_domain: np.ndarray  # every training essay's out-of-fold in_domain, in training order
    # the training essays in the space, when fitted in this process (adversarial validation reuses them)
    training_rows: sp.csr_matrix | None = field(default=None, repr=False, compare=False)

    @classmethod
    def fit(
        cls,
        texts: pd.Series,
        labels: np.ndarray,
        folds: np.ndarray,
        cfg: ShiftConfig,
        counted: tuple[sp.csr_matrix, np.ndarray] | None = None,
    ) -> ShiftScorer:
        """Cross-fitted: fold k's essays are scored by a space and references built without fold k, so the
        calibration reflects essays the scorer never saw (as every new essay is). ``counted``: these texts'
        rows of ``count_texts`` over a larger set (evaluate counts every essay once, not once per split)."""
        texts = texts.reset_index(drop=True)
        y, folds = binary_labels(labels), np.asarray(folds)
        rng = np.random.default_rng(cfg.seed)
        counts, terms = counted if counted is not None else count_texts(texts, cfg)
        oof = {c: np.zeros(len(texts)) for c in CLASSES}
        for k in np.unique(folds):
            fit_rows, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
            space, columns = TextSpace.from_counts(counts[fit_rows], terms, cfg)
            fitted, held_rows = (space.weighted(counts[rows][:, columns]) for rows in (fit_rows, held))
            for label, name in enumerate(CLASSES):
                ref = _sample(np.flatnonzero(y[fit_rows] == label), cfg.max_reference, rng)
                oof[name][held] = nearest_similarity(held_rows, fitted[ref].T.tocsc(), cfg.neighbours)
        class_oof = {name: np.sort(oof[name][y == label]) for label, name in enumerate(CLASSES)}
        nearness = np.max([_ecdf(class_oof[name], oof[name]) for name in CLASSES], axis=0)
        space, columns = TextSpace.from_counts(counts, terms, cfg)
        every = space.weighted(counts[:, columns])
        references = {
            name: every[_sample(np.flatnonzero(y == label), cfg.max_reference, rng)]
            for label, name in enumerate(CLASSES)
        }
        nearness_sorted = np.sort(nearness)
        return cls(space, references, class_oof, nearness_sorted, _ecdf(nearness_sorted, nearness), every)

    @classmethod
    def fit_cached(
        cls, texts: pd.Series, labels: np.ndarray, folds: np.ndarray, cfg: ShiftConfig, cache_dir: Path
    ) -> ShiftScorer:
        """``fit``, kept in ``cache_dir`` by content: train_fold's test-shift check and the blend fit the same
        scorer on the same essays, and the second reads the first's (~4 s on train.csv). A cache only: an
        unreadable file is refitted, one that cannot be written is skipped."""
        data = pd.DataFrame({"text": list(texts), "label": np.asarray(labels, float), "fold": np.asarray(folds)})
        key = fingerprint({"shift": to_dict(cfg), "data": frame_fingerprint(data, ["text", "label", "fold"])})
        path = Path(cache_dir) / SCORER_CACHE.format(key=key)
        if path.is_file():
            try:
                with np.load(path) as saved:
                    arrays = {name: saved[name] for name in saved.files}
                scorer = cls.from_arrays(arrays, cfg)
                scorer.training_rows = _csr(arrays, "training", len(scorer.space.vocabulary))
                return scorer
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                pass  # refitted and rewritten below
        scorer = cls.fit(data["text"], data["label"].to_numpy(), data["fold"].to_numpy(), cfg)
        rows = scorer.training_rows
        assert rows is not None
        extra = {"training_data": rows.data, "training_indices": rows.indices, "training_indptr": rows.indptr}
        with contextlib.suppress(OSError), atomic.atomic_path(path) as tmp, tmp.open("wb") as handle:
            np.savez(handle, **scorer.to_arrays(), **extra)  # a file object: no ".npz" added
        return scorer

    def rows_of_training(self, texts: pd.Series) -> sp.csr_matrix:
        """The training essays in the space: kept from the fit when there was one, else transformed."""
        return self.space.transform(list(texts)) if self.training_rows is None else self.training_rows

    @cached_property
    def references_t(self) -> dict[str, sp.csc_matrix]:
        """The references transposed once, not per chunk scored."""
        return {name: ref.T.tocsc() for name, ref in self.references.items()}

    def class_in_domain(self, texts: pd.Series | list[str], rows: sp.csr_matrix | None = None) -> dict[str, np.ndarray]:
        """Per class: the essay's similarity to that class, as a percentile among the class's own essays
        (``rows``: the texts already in the space)."""
        rows = self.space.transform(list(texts)) if rows is None else rows
        k = self.space.cfg.neighbours
        return {
            name: _ecdf(self.class_oof[name], nearest_similarity(rows, self.references_t[name], k)) for name in CLASSES
        }

    def in_domain(self, texts: pd.Series | list[str], rows: sp.csr_matrix | None = None) -> np.ndarray:
        nearness = np.max(list(self.class_in_domain(texts, rows).values()), axis=0)
        return _ecdf(self.nearness_oof, nearness)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (no pickle) for the saved ensemble (artifacts.py writes them)."""
        arrays: dict[str, np.ndarray] = {
            "vocabulary": np.array(self.space.vocabulary, dtype=str),
            "idf": self.space.idf,
            "nearness_oof": self.nearness_oof,
            "oof_in_domain": self.oof_in_domain,
        }
        for name in CLASSES:
            ref = self.references[name]
            arrays |= {f"{name}_data": ref.data, f"{name}_indices": ref.indices, f"{name}_indptr": ref.indptr}
            arrays[f"{name}_oof"] = self.class_oof[name]
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], cfg: ShiftConfig) -> ShiftScorer:
        vocabulary = arrays["vocabulary"].tolist()
        space = TextSpace(cfg, vocabulary, arrays["idf"])
        references = {name: _csr(arrays, name, len(vocabulary)) for name in CLASSES}
        return cls(
            space,
            references,
            {name: arrays[f"{name}_oof"] for name in CLASSES},
            arrays["nearness_oof"],
            arrays["oof_in_domain"],
        )


def _csr(arrays: dict[str, np.ndarray], name: str, n_terms: int) -> sp.csr_matrix:
    """The sparse matrix saved as ``<name>_data``, ``<name>_indices``, ``<name>_indptr``."""
    indptr = arrays[f"{name}_indptr"]
    return sp.csr_matrix((arrays[f"{name}_data"], arrays[f"{name}_indices"], indptr), shape=(len(indptr) - 1, n_terms))


def adversarial_auc(train_rows: sp.csr_matrix, test_rows: sp.csr_matrix, seed: int = 0) -> float | None:
    """Adversarial validation: the cross-validated AUC of a classifier telling test essays from training essays
    (both as rows of the shift space). ~0.5: the test looks like train; near 1: it is another population. None
    when the test is too small to cross-validate."""
    n_test = test_rows.shape[0]
    if n_test < 10:
        return None
    rows = sp.vstack([train_rows, test_rows]).tocsr()
    is_test = np.r_[np.zeros(train_rows.shape[0]), np.ones(n_test)]
    folds = StratifiedKFold(n_splits=min(5, n_test), shuffle=True, random_state=seed)
    model = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
    scores = cross_val_predict(model, rows, is_test, cv=folds, method="predict_proba")[:, 1]
    return auc(is_test, scores)

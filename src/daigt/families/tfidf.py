"""TF-IDF n-gram family: word / char n-grams into MultinomialNB, SGD and LogisticRegression.

Counting n-grams is most of the cost and does not depend on labels or folds, so ``prepare`` counts every
text of the run once; each fold then picks its vocabulary (min_df, max_df, max_features) and IDF from its
own fit documents. The result equals fitting sklearn's TfidfVectorizer per fold (tested), at a fraction
of the time. Texts that were not prepared are counted the same way and looked up in the fold's terms.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import ComplementNB, MultinomialNB

import daigt.text.bpe as bpe_module
from daigt.config import frame_fingerprint
from daigt.errors import DaigtError
from daigt.families.base import FitContext, ModelFamily, expand_soft_labels, fittable_texts
from daigt.schema import Invalid, sklearn_params_error, unknown_key_message
from daigt.text.bpe import TokenizerSpec, train_bpe
from daigt.text.ngram_tfidf import NgramTfidf, VectorizerSpec  # (models saved before it moved name it here too)
from daigt.text.views import TEXT_VIEWS

# fold models saved before the text helpers left families/ name the tokenizer spec by its old module
sys.modules.setdefault("daigt.families.bpe", bpe_module)

CLASSIFIERS: dict[str, type] = {
    "multinomial_nb": MultinomialNB,
    "complement_nb": ComplementNB,
    "sgd": SGDClassifier,
    "logistic_regression": LogisticRegression,
}
MODEL_FILE = "tfidf.joblib"
# zlib level of the compact (packaged) model: lossless, a fold of tfidf_bpe 92 -> ~21 MB (its IDF, codes and
# weights repeat a lot); what makes the offline Kaggle package small enough to upload. Training saves uncompressed:
# compressing cost ~1 s per fold, 5.6 s of a 47 s tfidf_bpe run (docs/benchmarks.md, "Where the time goes")
COMPACT_COMPRESSION = 3
PICKLE_PROTOCOL_OPCODE = b"\x80"  # the first byte of an uncompressed pickle (protocol 2 and later)
# fitted (classes x terms) arrays that sklearn's predict reads transposed (X @ a.T): kept in Fortran order, so the
# transpose is contiguous; scipy copied all of a C-ordered one at every call (0.8 s of 3.9 s scoring 3,000 texts)
READ_TRANSPOSED = ("feature_log_prob_", "coef_")
FIT_ONLY = ("feature_count_", "feature_all_")  # fitted attributes prediction never reads (naive Bayes: terms floats)


@dataclass
class ClassifierSpec:
    kind: str | None = None  # a key of CLASSIFIERS; default: the entry's own name
    weight: float = 1.0  # its share of the averaged probability
    params: dict[str, Any] = field(default_factory=dict)  # the classifier's keyword arguments


BPE_TOKEN_PATTERN = r"(?u)\S+"  # BPE tokens are joined by spaces and never contain one (byte-level alphabet)


TOKEN_READING = {"analyzer": "word", "token_pattern": BPE_TOKEN_PATTERN, "lowercase": False}  # a tokenizer's tokens
# what a tokenizer's ids are counted without: set with one, these would be ignored
NOT_READ_WITH_TOKENIZER = (*TOKEN_READING, "strip_accents", "stop_words", "binary")


@dataclass
class TfidfParams:
    vectorizer: VectorizerSpec = field(default_factory=VectorizerSpec)
    classifiers: dict[str, ClassifierSpec] = field(default_factory=dict)  # averaged by weight
    text_view: Literal["raw", "function_words"] = "raw"  # function_words: content words masked (how, not what)
    # whose texts fix the vocabulary (label-free; test: the public notebooks' transductive trick)
    fit_vocabulary_on: Literal["train", "test", "train+test"] = "train"
    tokenizer: TokenizerSpec | None = None  # null: the vectorizer's own analyzer

    def vectorizer_spec(self) -> VectorizerSpec:
        """The vectorizer as the features count with it: with a tokenizer, reading its tokens as they are."""
        return self.vectorizer if self.tokenizer is None else replace(self.vectorizer, **TOKEN_READING)

    def check(self) -> None:
        if self.tokenizer is not None:
            fixed = sorted(set(NOT_READ_WITH_TOKENIZER) & set(self.vectorizer.kwargs()))
            if fixed:
                raise Invalid(f"with a tokenizer the vectorizer reads its tokens: leave {fixed} unset", "vectorizer")
            if self.text_view != "raw":
                raise Invalid("a tokenizer reads the raw text: set text_view: raw", "tokenizer")
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


class TfidfFamily(ModelFamily):
    """Weighted average of linear classifiers on one TF-IDF representation."""

    Params = TfidfParams
    takes_row_weights = True

    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.features = NgramTfidf(self.params.vectorizer_spec())
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
        state, tokenizer = migrate_saved_state(state)
        self.__dict__.update(state)
        if tokenizer is not None and self.features.tokenizer is None:
            self.features.use_tokenizer(tokenizer)
        _transposable(self.classifiers)

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
        _transposable(self.classifiers)

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
        path = directory / MODEL_FILE
        with path.open("rb") as handle:
            plain = handle.read(1) == PICKLE_PROTOCOL_OPCODE  # a compressed (packaged) file starts otherwise
        # training's uncompressed folds are mapped, not read: load is ~3x faster, pages come in as scoring
        # reads them, and several processes share one copy
        return joblib.load(path, mmap_mode="r" if plain else None)


def migrate_saved_state(state: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """A saved ``TfidfFamily`` state of any older format in today's shape, and a tokenizer to hand to its
    features (None when there is none to move). Saved when the family kept the BPE tokenizer itself (``bpe``)
    and gave the vectorizer token views: the tokenizer now belongs to the features. (The features migrate
    their own older formats: ``ngram_tfidf.migrate_saved_state``.)"""
    state = dict(state)
    return state, state.pop("bpe", None)


def _transposable(classifiers: dict[str, Any]) -> None:
    """``READ_TRANSPOSED`` arrays in Fortran order: the same values, read without a copy."""
    for classifier in classifiers.values():
        for attribute in READ_TRANSPOSED:
            value = getattr(classifier, attribute, None)
            if isinstance(value, np.ndarray) and value.ndim == 2:
                setattr(classifier, attribute, np.asfortranarray(value))


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

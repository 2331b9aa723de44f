"""Reference-LM family: how each essay's words sit under a model of general English, not of the training essays.

Every word gets its log-probability under an offline unigram model of general English (the ``wordfreq``
package's frequencies, built from Wikipedia, subtitles, news, books, web text and more; unknown words get a
floor). An essay is described by that distribution — mean, spread, quantiles, the shares of rare, unknown and
very common words — and by how its own word counts follow Zipf's law (slope of log count against log rank,
and how closely the essay's word ranking follows general English's). A logistic regression turns these into
a probability.

Nothing here is learned from the training generators' text, only the few regression weights: language models
write with a narrower, more typical vocabulary than people (Ghostbuster-style features), and that holds for
generators and prompts the training set never showed, where n-gram models of the training essays do not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from daigt.errors import DaigtError
from daigt.families.base import FitContext, ModelFamily, expand_soft_labels
from daigt.schema import Invalid, keys_from

MODEL_FILE = "reference_lm.joblib"
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@dataclass
class ReferenceLMParams:
    wordlist: Literal["best", "large", "small"] = "best"  # wordfreq list of English frequencies
    floor_zipf: float = 0.5  # Zipf value of a word the list does not know (its own smallest is ~1)
    rare_zipf: float = 3.0  # below: a rare word (about once per million words)
    common_zipf: float = 6.0  # above: a very common word (function words)
    # quantiles of an essay's word log-probabilities, each a feature
    quantiles: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.25, 0.5, 0.75, 0.9])
    min_words: int = 5  # shorter essays get the features of an empty essay (all zero)
    # the logistic regression's keyword arguments
    classifier: dict[str, Any] = keys_from(lambda: LogisticRegression().get_params(), {"C": 0.5, "max_iter": 2000})

    def check(self) -> None:
        if not all(0 <= q <= 1 for q in self.quantiles):
            raise Invalid("quantiles lie in [0, 1]", "quantiles")
        if not self.floor_zipf < self.rare_zipf < self.common_zipf:
            raise Invalid("needs floor_zipf < rare_zipf < common_zipf")


@cache
def english_zipf(wordlist: str) -> dict[str, float]:
    """Zipf frequency (log10 of occurrences per billion words) of every word in wordfreq's English list."""
    try:
        import wordfreq
    except ImportError as err:  # pragma: no cover - a core requirement
        raise DaigtError("the reference_lm family needs wordfreq: pip install -r requirements.txt") from err
    return {w: float(np.log10(f) + 9.0) for w, f in wordfreq.get_frequency_dict("en", wordlist=wordlist).items()}


def reference_features(texts: Sequence[str], params: ReferenceLMParams) -> pd.DataFrame:
    """One row of general-English statistics per essay (see the module docstring)."""
    zipf = english_zipf(params.wordlist)
    rows = []
    for text in texts:
        words = WORD.findall(str(text).lower())
        if len(words) < params.min_words:
            rows.append({})
            continue
        values = np.array([zipf.get(w, params.floor_zipf) for w in words])
        known = values > params.floor_zipf
        row = {
            "ref_mean": values.mean(),
            "ref_std": values.std(),
            "ref_unknown": 1.0 - known.mean(),
            "ref_rare": (known & (values < params.rare_zipf)).mean(),
            "ref_common": (values > params.common_zipf).mean(),
            "ref_known_mean": values[known].mean() if known.any() else 0.0,
            "ref_log_words": np.log(len(words)),
        }
        for q in params.quantiles:
            row[f"ref_q{round(q * 100):02d}"] = np.quantile(values, q)
        row.update(_zipf_shape(words, zipf, params.floor_zipf))
        rows.append(row)
    return pd.DataFrame(rows, columns=_columns(params)).fillna(0.0)


def _zipf_shape(words: list[str], zipf: dict[str, float], floor: float) -> dict[str, float]:
    """Slope of log count vs log rank of the essay's own words, and the rank correlation between the essay's
    word counts and their general-English frequencies (how 'typical' its word choice is)."""
    counts = Counter(words)
    ordered = np.array(sorted(counts.values(), reverse=True), dtype=float)
    ranks = np.arange(1, len(ordered) + 1, dtype=float)
    slope = float(np.polyfit(np.log(ranks), np.log(ordered), 1)[0]) if len(ordered) > 2 else 0.0
    types = list(counts)
    own = pd.Series([counts[w] for w in types], dtype=float)
    general = pd.Series([zipf.get(w, floor) for w in types], dtype=float)
    typical = float(own.corr(general, method="spearman")) if len(types) > 2 else 0.0
    return {"ref_zipf_slope": slope, "ref_typicality": 0.0 if np.isnan(typical) else typical}


def _columns(params: ReferenceLMParams) -> list[str]:
    base = ["ref_mean", "ref_std", "ref_unknown", "ref_rare", "ref_common", "ref_known_mean", "ref_log_words"]
    return [*base, *(f"ref_q{round(q * 100):02d}" for q in params.quantiles), "ref_zipf_slope", "ref_typicality"]


class ReferenceLMFamily(ModelFamily):
    Params = ReferenceLMParams
    takes_row_weights = True
    requirements = ("wordfreq",)

    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.classifier: Pipeline | None = None
        self._cache: dict[str, np.ndarray] = {}  # features of prepared essays, never saved

    def features(self, texts: Sequence[str]) -> pd.DataFrame:
        """From the run's cache when every essay was prepared, else computed (new essays at predict time)."""
        if all(t in self._cache for t in texts):
            return pd.DataFrame([self._cache[t] for t in texts], columns=_columns(self.params))
        return reference_features(texts, self.params)

    def prepare(self, corpus: pd.DataFrame) -> None:
        """Features are label-free: computed once per run for every essay, shared by the folds."""
        unique = list(dict.fromkeys(corpus["text"]))
        self._cache = dict(zip(unique, reference_features(unique, self.params).to_numpy(), strict=True))

    def fit(self, train: pd.DataFrame, context: FitContext) -> None:
        rows, targets, weights = expand_soft_labels(train)
        self.classifier = make_pipeline(StandardScaler(), LogisticRegression(**self.params.classifier))
        self.classifier.fit(self.features(rows["text"].tolist()), targets, logisticregression__sample_weight=weights)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.classifier is None:
            raise DaigtError("reference_lm: predict before fit")
        return self.classifier.predict_proba(self.features(frame["text"].tolist()))[:, 1]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}}

    def save(self, directory: Path) -> None:
        joblib.dump(self, directory / MODEL_FILE)

    @classmethod
    def load(cls, directory: Path) -> ReferenceLMFamily:
        return joblib.load(directory / MODEL_FILE)

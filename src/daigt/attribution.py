"""Which model wrote it: generator-family attribution, the second task beside human/AI.

Trained on the AI texts alone (their family from ``source``, generators.py), fold by fold on the detector's own
folds, so every training text gets an out-of-fold answer: the report's figures, the temperature that calibrates
the probabilities and the open-set rule all come from those. One model trained on all of them then answers for
the holdout, the test and predict. Each view (word n-grams, character n-grams) is TF-IDF + multinomial logistic
regression with balanced class weights (one large family must not drown the rest); the views' log-probabilities
are averaged.

A text is given a family only when all three hold; else ``unknown``:
- it is decided ``ai`` (attribution answers "which model", never "whether");
- its top family's calibrated probability reaches ``min_probability``;
- it resembles that family's training texts: its cosine to the family's centroid is at least the
  ``open_set_share`` quantile of the family's own texts, out of fold (open set: a generator unlike every
  training family is not forced into one).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from daigt.decisions import AI, UNKNOWN
from daigt.generators import NO_FAMILY, OTHER, GeneratorVocabulary
from daigt.plots import save_figure, subplots
from daigt.schema import Invalid, check_ngram_range
from essayio import console

TEMPERATURES = np.geomspace(0.25, 4.0, 41)  # the grid the OOF temperature is chosen on


@dataclass
class ViewSpec:
    """One TF-IDF view of a text for the attribution model."""

    analyzer: Literal["word", "char", "char_wb"] = "word"  # word n-grams, or character n-grams (char_wb: in words)
    ngram_range: list[int] = field(default_factory=lambda: [1, 2])  # [shortest, longest] n-gram
    max_features: int = 50_000  # the most frequent n-grams: bounds the saved model's size
    min_df: int = 2  # an n-gram in fewer training AI texts is dropped

    def check(self) -> None:
        check_ngram_range(self.ngram_range)
        if self.max_features < 1 or self.min_df < 1:
            raise Invalid("max_features and min_df must be >= 1")


@dataclass
class AttributionConfig:
    """blend.yaml ``attribution:``: the second task, trained and saved with the ensemble."""

    enabled: bool = True  # false: no second task (no generator columns; the ensemble as before)
    vocabulary: GeneratorVocabulary = field(default_factory=GeneratorVocabulary)  # source name -> family
    min_texts: int = 30  # a family with fewer AI training texts is not learnt (too few to say anything)
    # each a TF-IDF view with its own logistic regression; their log-probabilities are averaged
    views: list[ViewSpec] = field(default_factory=lambda: [ViewSpec("word", [1, 2]), ViewSpec("char_wb", [3, 5])])
    # each text's first characters the views read (null: all). 1,500 would make predict's attribution cheaper,
    # but the detector profile's texts decided ai and named fell from 49 % to 37 % (docs/attribution.md)
    max_chars: int | None = None
    C: float = 10.0  # inverse L2 strength of each view's logistic regression
    max_iter: int = 300  # the logistic regressions' iterations (lbfgs converges in about 50 here)
    # the open set: measured by holding out each generator of train.csv in turn (docs/attribution.md). With
    # 0.6 and 0.05, 66-80 % of a held-out generator's texts were given a wrong named family; with 0.98 and 0.2,
    # at most 11 %, at the cost of 28 % of the training generators' texts (OOF) answered unknown.
    # A lower top-family probability (calibrated) is unknown
    min_probability: float = 0.98
    open_set_share: float = 0.2  # share of a family's own texts (OOF) that fall under its centroid cut

    def check(self) -> None:
        if not self.views:
            raise Invalid("give at least one view", "views")
        if not 0 <= self.min_probability < 1:
            raise Invalid(f"must lie in [0, 1), got {self.min_probability}", "min_probability")
        if not 0 <= self.open_set_share < 0.5:
            raise Invalid(f"must lie in [0, 0.5), got {self.open_set_share}", "open_set_share")
        if self.min_texts < 2 or self.C <= 0 or self.max_iter < 1:
            raise Invalid("min_texts must be >= 2, C > 0 and max_iter >= 1")


class GeneratorModel:
    """TF-IDF views + a multinomial logistic regression per view; each family's centroid in the first view.

    The views (vocabulary, idf) are fitted once on every training AI text and shared by the fold models: they
    are label-free, so a fold's held-out texts shape no decision boundary, and the texts are counted once."""

    def __init__(self, cfg: AttributionConfig, classes: list[str], vectorizers: list[TfidfVectorizer]) -> None:
        self.cfg, self.classes, self.vectorizers = cfg, list(classes), vectorizers
        self.heads: list[LogisticRegression] = []
        self.centroids: np.ndarray | None = None  # (families, features of view 0), unit rows

    @staticmethod
    def fit_views(cfg: AttributionConfig, texts: pd.Series) -> tuple[list[TfidfVectorizer], list[Any]]:
        """The views fitted on ``texts``, and their rows."""
        vectorizers, rows = [], []
        for spec in cfg.views:
            vectorizer = TfidfVectorizer(
                analyzer=spec.analyzer, ngram_range=tuple(spec.ngram_range), max_features=spec.max_features,
                min_df=spec.min_df, sublinear_tf=True, dtype=np.float32,
            )  # fmt: skip
            rows.append(vectorizer.fit_transform(_head(texts, cfg.max_chars)))
            vectorizer.stop_words_ = None  # every term cut by max_features/min_df: large, and unused to transform
            vectorizers.append(vectorizer)
        return vectorizers, rows

    def transform(self, texts: pd.Series) -> list[Any]:
        return [v.transform(_head(texts, self.cfg.max_chars)) for v in self.vectorizers]

    def fit(self, rows: list[Any], families: np.ndarray) -> GeneratorModel:
        """Fit the heads on the views' ``rows`` of the training texts and their families."""
        y = np.array([self.classes.index(f) for f in families])
        self.heads = [
            LogisticRegression(C=self.cfg.C, max_iter=self.cfg.max_iter, class_weight="balanced").fit(x, y)
            for x in rows
        ]
        sums = np.vstack([np.asarray(rows[0][y == k].sum(axis=0)) for k in range(len(self.classes))])
        self.centroids = normalize(sums)
        return self

    def log_proba(self, rows: list[Any]) -> np.ndarray:
        """The views' mean log-probability per family (rows: texts), before calibration."""
        parts = []
        for x, head in zip(rows, self.heads, strict=True):
            # a family absent from this fit (all its texts in one fold) gets no probability
            probs = np.full((x.shape[0], len(self.classes)), 1e-12)
            probs[:, head.classes_] = head.predict_proba(x)
            parts.append(np.log(np.clip(probs, 1e-12, 1)))
        return np.mean(parts, axis=0)

    def similarity(self, rows: list[Any]) -> np.ndarray:
        """Cosine of each text to each family's centroid (first view)."""
        assert self.centroids is not None
        return np.asarray(rows[0] @ self.centroids.T)


def _head(texts: pd.Series, max_chars: int | None) -> list[str]:
    return texts.tolist() if max_chars is None else texts.str.slice(0, max_chars).tolist()


def softmax(log_p: np.ndarray, temperature: float) -> np.ndarray:
    z = log_p / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(log_p: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the OOF negative log-likelihood (one scalar: the ranking is kept)."""
    losses = [-np.mean(np.log(softmax(log_p, t)[np.arange(len(y)), y] + 1e-12)) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


@dataclass
class Attributor:
    """The saved second task: the model on every training AI text, its temperature and open-set cuts."""

    model: GeneratorModel
    temperature: float
    centroid_cuts: np.ndarray  # per family: a text under its family's cut is unlike that family
    cfg: AttributionConfig

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    def probabilities(self, texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated family probabilities and centroid similarities of ``texts``."""
        rows = self.model.transform(texts)
        return softmax(self.model.log_proba(rows), self.temperature), self.model.similarity(rows)

    def attribute(self, texts: pd.Series, decisions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``generator`` (a family or unknown) and ``generator_probability`` (the top family's; NaN for a text not
        decided ai, which is never attributed, so never scored: most texts cost nothing here)."""
        decided = np.flatnonzero(np.asarray(decisions) == AI)
        generator = np.full(len(texts), UNKNOWN, dtype=object)
        probability = np.full(len(texts), np.nan)
        if len(decided):
            probs, similarity = self.probabilities(texts.iloc[decided])
            generator[decided], probability[decided] = self.decide(probs, similarity, np.asarray(decisions)[decided])
        return generator, probability

    def decide(self, probs: np.ndarray, similarity: np.ndarray, decisions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        top = probs.argmax(axis=1)
        rows = np.arange(len(top))
        named = np.asarray(self.classes, dtype=object)[top]
        unlike = similarity[rows, top] < self.centroid_cuts[top]
        unsure = probs[rows, top] < self.cfg.min_probability
        generator = np.where((np.asarray(decisions) != AI) | unsure | unlike, UNKNOWN, named)
        return generator.astype(object), probs[rows, top]


@dataclass
class OutOfFold:
    """What fold-by-fold training gives: per named training AI text, its family and the OOF answer."""

    rows: np.ndarray  # positions in the training frame
    truth: np.ndarray  # family index per row
    probs: np.ndarray  # calibrated, (rows, families)
    similarity: np.ndarray  # (rows, families)


def learnable(train: pd.DataFrame, cfg: AttributionConfig) -> tuple[np.ndarray, list[str]]:
    """Each training row's family (NO_FAMILY: not learnt) and the families with at least ``min_texts`` texts."""
    families = cfg.vocabulary.families_of(train["source"], train["label"].to_numpy(dtype=float))
    counts = pd.Series(families[families != NO_FAMILY]).value_counts()
    classes = sorted(counts.index[counts >= cfg.min_texts])
    families[~np.isin(families, classes)] = NO_FAMILY
    return families, classes


def fit_attributor(train: pd.DataFrame, cfg: AttributionConfig) -> tuple[Attributor, OutOfFold] | None:
    """Fold by fold on ``train``'s ``fold`` column, then once on every named AI text; None with fewer than two
    learnable families (nothing to tell apart)."""
    families, classes = learnable(train, cfg)
    if len(classes) < 2:
        return None
    rows = np.flatnonzero(families != NO_FAMILY)
    texts, truth = train["text"].iloc[rows].reset_index(drop=True), np.array([classes.index(f) for f in families[rows]])
    folds = train["fold"].to_numpy()[rows]
    vectorizers, views = GeneratorModel.fit_views(cfg, texts)
    views = [x.tocsr() for x in views]
    log_p, similarity = np.zeros((len(rows), len(classes))), np.zeros((len(rows), len(classes)))
    for fold in console.bar(np.unique(folds), desc="attribution folds", unit="fold", leave=False):
        fit, held = folds != fold, folds == fold
        model = GeneratorModel(cfg, classes, vectorizers).fit([x[fit] for x in views], families[rows][fit])
        held_rows = [x[held] for x in views]
        log_p[held], similarity[held] = model.log_proba(held_rows), model.similarity(held_rows)
    temperature = fit_temperature(log_p, truth)
    own = similarity[np.arange(len(truth)), truth]
    cuts = np.array([np.quantile(own[truth == k], cfg.open_set_share) for k in range(len(classes))])
    final = GeneratorModel(cfg, classes, vectorizers).fit(views, families[rows])
    oof = OutOfFold(rows, truth, softmax(log_p, temperature), similarity)
    return Attributor(final, temperature, cuts, cfg), oof


def _per_family(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in classes:
        said, real = predicted == name, truth == name
        hit = int((said & real).sum())
        out[name] = {
            "n": int(real.sum()),
            "precision": hit / int(said.sum()) if said.any() else None,
            "recall": hit / int(real.sum()) if real.any() else None,
        }
    return out


def macro_f1(per_family: dict[str, dict[str, Any]]) -> float:
    scores = []
    for row in per_family.values():
        p, r = row["precision"] or 0.0, row["recall"] or 0.0
        scores.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(scores))


def attribution_figures(
    truth: np.ndarray, probs: np.ndarray, generator: np.ndarray, decisions: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """Closed set (the top family of every named AI text): macro-F1, per-family precision and recall, the
    confusion matrix. As shipped (decided ``ai`` texts, with unknown): the share named right, wrong, unknown."""
    names = np.asarray(classes, dtype=object)
    true_names, top = names[truth], names[probs.argmax(axis=1)]
    per_family = _per_family(true_names, top, classes)
    confusion = [[int(((true_names == a) & (top == b)).sum()) for b in classes] for a in classes]
    decided = np.asarray(decisions) == AI
    said = generator[decided]
    shipped = {
        "n_decided_ai": int(decided.sum()),
        "right": float(np.mean(said == true_names[decided])) if decided.any() else None,
        "wrong": float(np.mean((said != UNKNOWN) & (said != true_names[decided]))) if decided.any() else None,
        "unknown": float(np.mean(said == UNKNOWN)) if decided.any() else None,
    }
    return {
        "n": len(truth),
        "macro_f1": macro_f1(per_family),
        "accuracy": float(np.mean(top == true_names)) if len(truth) else None,
        "per_family": per_family,
        "confusion": confusion,
        "shipped": shipped,
    }


def held_out_generator(generator: np.ndarray, family: str, classes: list[str]) -> dict[str, Any]:
    """What a generator training never saw was attributed to (its texts decided ``ai``): its own family when it
    is still learnt (right), another named family (wrong), ``other`` or unknown. A family no longer learnt is
    right only as ``other`` (a known generator outside the families) or unknown."""
    n = len(generator)
    learnt = family in classes  # other included: a known generator outside the families is right as other
    if n == 0:
        return {"family": family, "family_learnt": learnt, "n_decided_ai": 0, "right": None, "wrong_named": None,
                OTHER: None, UNKNOWN: None}  # fmt: skip
    named = (generator != UNKNOWN) & (generator != OTHER)
    return {
        "family": family,
        "family_learnt": learnt,
        "n_decided_ai": n,
        "right": float(np.mean(generator == family)) if learnt else None,
        "wrong_named": float(np.mean(named & (generator != family))),
        OTHER: float(np.mean(generator == OTHER)),
        UNKNOWN: float(np.mean(generator == UNKNOWN)),
    }


def attribution_report(
    train: pd.DataFrame,
    attributor: Attributor,
    oof: OutOfFold,
    oof_decisions: np.ndarray,
    holdout: pd.DataFrame | None = None,
    holdout_decisions: np.ndarray | None = None,
) -> dict[str, Any]:
    """The report.json section: OOF figures and, for the holdout's texts of learnt families, the same."""
    generator, _ = attributor.decide(oof.probs, oof.similarity, oof_decisions[oof.rows])
    report: dict[str, Any] = {
        "classes": attributor.classes,
        "temperature": attributor.temperature,
        "centroid_cuts": np.round(attributor.centroid_cuts, 6).tolist(),
        "min_probability": attributor.cfg.min_probability,
        "training_texts": {c: int((oof.truth == k).sum()) for k, c in enumerate(attributor.classes)},
        "oof": attribution_figures(oof.truth, oof.probs, generator, oof_decisions[oof.rows], attributor.classes),
    }
    if holdout is not None and holdout_decisions is not None and len(holdout):
        families, _ = learnable(holdout, replace(attributor.cfg, min_texts=1))
        rows = np.flatnonzero(np.isin(families, attributor.classes))
        if len(rows):
            probs, similarity = attributor.probabilities(holdout["text"].iloc[rows])
            said, _ = attributor.decide(probs, similarity, holdout_decisions[rows])
            truth = np.array([attributor.classes.index(f) for f in families[rows]])
            report["holdout"] = attribution_figures(truth, probs, said, holdout_decisions[rows], attributor.classes)
    return report


def confusion_plot(path: Path, figures: dict[str, Any], classes: list[str], title: str) -> None:
    """The confusion matrix (rows: the true family; columns: the top family), each row as shares."""
    counts = np.asarray(figures["confusion"], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = subplots(figsize=(1.2 * len(classes) + 2.5, 1.0 * len(classes) + 1.5))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, f"{int(value)}", ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xlabel("attributed (top family)")
    ax.set_ylabel("true family")
    ax.set_title(f"{title}: macro-F1 {figures['macro_f1']:.3f}")
    save_figure(fig, path, bbox_inches="tight")


def markdown(report: dict[str, Any]) -> str:
    """The report.md section."""
    oof = report["oof"]
    lines = ["## Which model wrote it: generator attribution", ""]
    lines += [f"Out of fold, over {oof['n']:,} AI texts of {len(report['classes'])} families: macro-F1 "
              f"**{oof['macro_f1']:.3f}**, accuracy {oof['accuracy']:.3f} (the top family of each text).",
              ""]  # fmt: skip
    lines += ["| family | texts | precision | recall |", "|---|---|---|---|"]
    for name, row in oof["per_family"].items():
        lines.append(f"| {name} | {row['n']} | {_pct(row['precision'])} | {_pct(row['recall'])} |")
    lines += ["", "![confusion matrix](attribution.png)", ""]
    for where, title in (("oof", "Out of fold"), ("holdout", "The locked holdout")):
        if where in report:
            s = report[where]["shipped"]
            lines.append(f"{title}, as shipped (texts decided ai, {s['n_decided_ai']:,}): family right "
                         f"{_pct(s['right'])}, wrong {_pct(s['wrong'])}, unknown {_pct(s['unknown'])}.")  # fmt: skip
    return "\n".join([*lines, ""])


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"

"""From probabilities to decisions a teacher can defend: thresholds chosen on OOF scores, an UNKNOWN band.

``high`` is the lowest score at which at most ``target_fpr`` of human essays would be flagged (false
accusations are the costly error). With ``unknown_band``, ``low`` is the highest score below which at most
``target_fnr`` of AI essays would pass as human, and scores in [low, high) are UNKNOWN: nobody is accused
and nobody is cleared on weak evidence. Without the band one cut decides (``threshold: target_fpr`` or
``best_accuracy``).

Beyond the training population the scores mean less (shift.py), so decisions also read ``in_domain``: an essay
the training set does not cover (``in_domain < out_of_domain_share``) is never decided, and one at the edge of
it (``in_domain < edge_share``) is called AI only above ``edge_high``, the cut at the far smaller
``edge_target_fpr``: the less familiar the writing, the stronger the evidence an accusation needs. Every
decision carries its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
from scipy import stats
from sklearn.metrics import classification_report, confusion_matrix

from daigt.data import binary_labels
from daigt.errors import DaigtError
from daigt.metrics import fpr_cut
from daigt.schema import Invalid

AI, HUMAN, UNKNOWN = "ai", "human", "unknown"
DECISIONS = (AI, HUMAN, UNKNOWN)
# why an essay got its decision: decided by its score, or left unknown for one of the other reasons
SCORE, UNCERTAIN, TOO_SHORT, OUT_OF_DOMAIN, EDGE_OF_DOMAIN = (
    "score", "uncertain", "too_short", "out_of_domain", "edge_of_domain",
)  # fmt: skip
REASONS = (SCORE, UNCERTAIN, TOO_SHORT, OUT_OF_DOMAIN, EDGE_OF_DOMAIN)


@dataclass(frozen=True)
class Thresholds:
    low: float  # below: human
    high: float  # at or above: ai; in between: unknown (low == high: no band)
    rule: str
    target_fpr: float
    target_fnr: float | None
    min_words: int = 0  # shorter essays are UNKNOWN whatever their score (too little text to judge)
    out_of_domain_below: float = 0.0  # in_domain under this: UNKNOWN (out_of_domain)
    edge_below: float = 0.0  # in_domain under this: AI only at or above edge_high
    edge_high: float | None = None
    # where the ai cuts were set: "oof" (the training population's OOF humans) or "held_out" (humans of groups
    # no split trained on, at ``confidence``: see held_out_thresholds)
    cut_from: str = "oof"
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        return cls(**data)


def _candidates(scores: np.ndarray) -> np.ndarray:
    """Every distinct score, plus one just above the maximum (the 'flag nobody' cut)."""
    unique = np.unique(scores)
    return np.append(unique, np.nextafter(unique[-1], np.inf))


def fpr_threshold(labels: np.ndarray, scores: np.ndarray, target_fpr: float) -> float:
    """Lowest cut t with mean(human scores >= t) <= target_fpr."""
    human = np.sort(scores[binary_labels(labels) == 0])
    if not len(human):
        raise DaigtError("no human essays among the OOF rows: cannot choose a false-positive-rate threshold")
    return fpr_cut(human, _candidates(scores), target_fpr)


def fnr_threshold(labels: np.ndarray, scores: np.ndarray, target_fnr: float) -> float:
    """Highest cut t with mean(AI scores < t) <= target_fnr."""
    ai = np.sort(scores[binary_labels(labels) == 1])
    if not len(ai):
        raise DaigtError("no AI essays among the OOF rows: cannot choose a false-negative-rate threshold")
    cuts = _candidates(scores)
    missed = np.searchsorted(ai, cuts, side="left")
    ok = np.flatnonzero(missed / len(ai) <= target_fnr)
    return float(cuts[ok[-1]])


def accuracy_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The cut with the best accuracy (ties: the highest, i.e. fewer accusations)."""
    y = binary_labels(labels)
    cuts = _candidates(scores)
    ai, human = np.sort(scores[y == 1]), np.sort(scores[y == 0])
    correct = (len(ai) - np.searchsorted(ai, cuts, side="left")) + np.searchsorted(human, cuts, side="left")
    return float(cuts[len(cuts) - 1 - np.argmax(correct[::-1])])


@dataclass
class DecisionConfig:
    """``decisions:`` in configs/blend.yaml."""

    threshold: Literal["target_fpr", "best_accuracy"] = "target_fpr"  # the cut above which an essay is AI
    target_fpr: float = 0.01  # at most this share of human essays flagged
    unknown_band: bool = False  # scores between the two cuts are UNKNOWN
    target_fnr: float = 0.05  # lower cut: at most this share of AI essays called human
    # essays with fewer words are UNKNOWN: a score from a few words is noise ("Aaa bbb ccc." scored 0.98)
    min_words: int = 50
    # in_domain (shift.py) under this share: out of domain, never decided. It is the share of the training
    # population (held out) flagged, by construction
    out_of_domain_share: float = 0.03
    # in_domain under this share: at the edge of the training population, AI only at the cut for edge_target_fpr
    edge_share: float = 0.10
    edge_target_fpr: float = 0.001  # the stricter false-positive rate an AI decision needs at the edge of the domain
    # oof: the ai cuts from the OOF humans (the training population); held_out: also from the humans of every
    # domain or genre src/evaluate.py held out (its logo protocol), so the false-positive promise is made for
    # writers and kinds of text training never saw; the stricter of the two cuts is kept
    cut_from: Literal["oof", "held_out"] = "oof"
    # held_out: the cut keeps the false-positive rate on a new group under target_fpr with this probability
    # (a conformal bound: the binomial tail of the held-out humans above the cut)
    confidence: float = 0.9

    def check(self) -> None:
        if self.edge_share < self.out_of_domain_share:
            raise Invalid(f"must be >= out_of_domain_share ({self.out_of_domain_share}), got {self.edge_share}",
                          "edge_share")  # fmt: skip
        if not 0 < self.confidence < 1:
            raise Invalid(f"must lie in (0, 1), got {self.confidence}", "confidence")
        for key in ("target_fpr", "target_fnr", "out_of_domain_share", "edge_share", "edge_target_fpr"):
            if not 0 <= getattr(self, key) <= 1:
                raise Invalid(f"must lie in [0, 1], got {getattr(self, key)}", key)


def choose_thresholds(labels: np.ndarray, scores: np.ndarray, cfg: DecisionConfig) -> Thresholds:
    labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    rule, target_fpr = cfg.threshold, cfg.target_fpr
    high = fpr_threshold(labels, scores, target_fpr) if rule == "target_fpr" else accuracy_threshold(labels, scores)
    target_fnr = None
    low = high
    if cfg.unknown_band:
        target_fnr = cfg.target_fnr
        low = min(high, fnr_threshold(labels, scores, target_fnr))
    edge_high = max(high, fpr_threshold(labels, scores, cfg.edge_target_fpr))
    return Thresholds(
        low, high, rule, target_fpr, target_fnr, cfg.min_words, cfg.out_of_domain_share, cfg.edge_share, edge_high
    )


def conformal_cut(human_scores: np.ndarray, target_fpr: float, confidence: float) -> float:
    """The lowest cut that flags at most ``target_fpr`` of humans from a population exchangeable with
    ``human_scores``, with probability ``confidence``. The cut at the k-th highest of n human scores flags a
    share of the population distributed Beta(k, n-k+1), which stays under target_fpr with probability
    P(Binomial(n, target_fpr) >= k); the cut takes the largest such k. With too few humans for k = 1, it flags
    none of them."""
    human = np.sort(np.asarray(human_scores, dtype=float))
    if not len(human):
        raise DaigtError("no held-out human texts: cannot set the ai cut from held-out groups")
    cdf = stats.binom.cdf(np.arange(len(human)), len(human), target_fpr)  # P(Binomial <= j)
    ok = np.flatnonzero(cdf <= 1 - confidence)
    k = int(ok[-1]) + 1 if len(ok) else 0  # human scores left at or above the cut
    return float(human[len(human) - k]) if k else float(np.nextafter(human[-1], np.inf))


def held_out_thresholds(base: Thresholds, human_scores: np.ndarray, cfg: DecisionConfig) -> Thresholds:
    """``base`` (from OOF) with the ai cuts raised to the conformal cuts on held-out groups' humans, where those
    are stricter: the promise holds for the training population and, at ``confidence``, for a new one."""
    high = max(base.high, conformal_cut(human_scores, cfg.target_fpr, cfg.confidence))
    edge = conformal_cut(human_scores, cfg.edge_target_fpr, cfg.confidence)
    edge_high = max(high, edge, base.edge_high if base.edge_high is not None else high)
    return replace(base, high=high, low=min(base.low, high), edge_high=edge_high, cut_from="held_out",
                   confidence=cfg.confidence)  # fmt: skip


def decide_with_reasons(
    scores: np.ndarray,
    thresholds: Thresholds,
    texts: Sequence[str] | None = None,
    in_domain: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """ai / human / unknown per essay, and why. Without ``texts`` no essay is too short; without ``in_domain``
    every essay counts as in domain."""
    scores = np.asarray(scores, dtype=float)
    t = thresholds
    high = np.full(len(scores), t.high)
    reasons = np.full(len(scores), SCORE, dtype=object)
    if in_domain is not None:
        in_domain = np.asarray(in_domain, dtype=float)
        edge = in_domain < t.edge_below
        if t.edge_high is not None:
            high = np.where(edge, t.edge_high, high)
        reasons[edge & (scores >= t.high) & (scores < high)] = EDGE_OF_DOMAIN
        reasons[in_domain < t.out_of_domain_below] = OUT_OF_DOMAIN
    decisions = np.where(scores >= high, AI, np.where(scores < t.low, HUMAN, UNKNOWN))
    reasons[(reasons == SCORE) & (decisions == UNKNOWN)] = UNCERTAIN
    if texts is not None and t.min_words:
        words = np.array([len(str(text).split()) for text in texts])
        reasons[words < t.min_words] = TOO_SHORT
    decisions = np.where(np.isin(reasons, [SCORE, UNCERTAIN]), decisions, UNKNOWN)
    return decisions.astype(str), reasons.astype(str)


def decide(
    scores: np.ndarray, thresholds: Thresholds, texts: Sequence[str] | None = None, in_domain: np.ndarray | None = None
) -> np.ndarray:
    """ai / human / unknown per essay (``decide_with_reasons`` without the reasons)."""
    return decide_with_reasons(scores, thresholds, texts, in_domain)[0]


def coverage_report(labels: np.ndarray, decisions: np.ndarray) -> dict[str, Any]:
    """Counts and shares per decision, a classification report on the decided essays, and the accuracy
    that counts UNKNOWN as wrong (what a user who must act on every essay actually gets)."""
    y = np.where(binary_labels(labels) == 1, AI, HUMAN)
    decided = decisions != UNKNOWN
    counts = {d: int((decisions == d).sum()) for d in (AI, HUMAN, UNKNOWN)}
    report: dict[str, Any] = {
        "n": len(decisions),
        "counts": counts,
        "proportions": {d: c / max(1, len(decisions)) for d, c in counts.items()},
        "coverage": float(decided.mean()) if len(decisions) else 0.0,
        "accuracy_unknown_as_wrong": float((decisions == y).mean()) if len(decisions) else float("nan"),
        "accuracy_on_decided": float((decisions[decided] == y[decided]).mean()) if decided.any() else float("nan"),
    }
    if decided.any():
        report["classification_report"] = classification_report(
            y[decided], decisions[decided], labels=[HUMAN, AI], output_dict=True, zero_division=0
        )
        report["classification_report_text"] = classification_report(
            y[decided], decisions[decided], labels=[HUMAN, AI], digits=4, zero_division=0
        )
        report["confusion_matrix"] = {
            "labels": [HUMAN, AI],
            "matrix": confusion_matrix(y[decided], decisions[decided], labels=[HUMAN, AI]).tolist(),
        }
    return report


def coverage_text(report: dict[str, Any]) -> str:
    """The coverage report as plain text (predict prints it; the analysis embeds it)."""
    lines = ["decision   count   share"]
    for d in (AI, HUMAN, UNKNOWN):
        lines.append(f"{d:<9} {report['counts'][d]:>6}   {report['proportions'][d]:6.1%}")
    lines.append(f"coverage (decided) {report['coverage']:.1%}")
    lines.append(f"accuracy on decided {report['accuracy_on_decided']:.4f}")
    lines.append(f"accuracy, UNKNOWN counted wrong {report['accuracy_unknown_as_wrong']:.4f}")
    if "classification_report_text" in report:
        lines += ["", "on the decided essays:", report["classification_report_text"]]
    return "\n".join(lines)

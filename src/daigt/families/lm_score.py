"""Zero-shot scores from a pair of causal language models: Binoculars and Fast-DetectGPT.

Nothing is learnt from the training essays, so nothing overfits their generators, prompts or domain: the
score asks whether the text is as predictable to an LLM as LLM text is. That is what transfers to generators
and domains a training set never showed.

- ``binoculars`` (Hans et al., 2024): the text's log-perplexity under the *performer*, divided by the
  cross-perplexity of observer and performer (at each position, the performer's log-probabilities averaged
  under the observer's next-token distribution). Low means machine-written.
- ``fast_detectgpt`` (Bao et al., 2024, the analytic criterion): the text's log-likelihood under the
  *observer* (the scoring model), standardised by the mean and variance that log-likelihood would have for
  tokens sampled from the *performer*'s (the reference model's) distribution at each position. High means
  machine-written.

Both are computed per sequence over its real tokens only (right padding, masked), truncated to
``max_length`` tokens. A score becomes P(AI) through a fixed logistic map (``center``, ``scale``), so the
family needs no training; ``calibrate: true`` fits that map on the training essays' scores instead. Every
essay is scored once per run (``prepare``) and the folds share the scores.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from daigt.errors import DaigtError
from daigt.families.base import FitContext, ModelFamily
from daigt.hf.loading import TORCH_STACK, configure_runtime, device, from_pretrained, load_tokenizer
from daigt.schema import Invalid, parse, to_dict
from essayio import console

PARAMS_FILE = "lm_score.json"
# score -> P(AI) = sigmoid(direction * (score - center) / scale); Binoculars' published low-FPR threshold for
# the Falcon-7B pair, and a Fast-DetectGPT criterion where human and machine text typically part
DEFAULT_CENTER = {"binoculars": 0.9015, "fast_detectgpt": 2.0}
DIRECTION = {"binoculars": -1.0, "fast_detectgpt": 1.0}  # which way is "machine"
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass
class LmScoreParams:
    """``params:`` of an ``lm_score`` model config."""

    method: Literal["binoculars", "fast_detectgpt"] = "binoculars"  # the zero-shot statistic (docs/gpu.md)
    observer: str = "tiiuae/falcon-7b"  # local folder, hub id or pkg:<module>; binoculars' observer, FDG's scorer
    performer: str = "tiiuae/falcon-7b-instruct"  # must share the observer's tokenizer; FDG's reference model
    max_length: int = 512  # tokens per essay (longer essays are truncated)
    batch_size: int = 8  # essays per forward pass
    precision: Literal["fp32", "bf16", "fp16"] = "bf16"  # weights' dtype on GPU; fp16 is for GPUs without bf16
    center: float | None = None  # None: the method's default (DEFAULT_CENTER)
    scale: float = 0.05  # P(AI) = sigmoid(direction * (score - center) / scale) when not calibrated
    calibrate: bool = False  # true: fit the score -> P(AI) map on the training essays (a 1-D logistic regression)

    def check(self) -> None:
        for key in ("max_length", "batch_size"):
            if getattr(self, key) < 2:
                raise Invalid(f"must be >= 2, got {getattr(self, key)}", key)
        if self.scale <= 0:
            raise Invalid(f"must be > 0, got {self.scale}", "scale")


def sequence_scores(
    observer_logits: Any, performer_logits: Any, input_ids: Any, attention_mask: Any, method: str
) -> np.ndarray:
    """The method's score per sequence from both models' logits (batch, length, vocab); padded positions
    (attention_mask 0) count for nothing."""
    import torch

    observer = observer_logits[:, :-1].float()
    performer = performer_logits[:, :-1].float()
    targets = input_ids[:, 1:]
    mask = attention_mask[:, 1:].float()
    observer_logp, performer_logp = observer.log_softmax(-1), performer.log_softmax(-1)

    def masked_mean(values: torch.Tensor) -> torch.Tensor:
        return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)

    if method == "binoculars":
        log_ppl = masked_mean(-performer_logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1))
        cross = masked_mean(-(observer_logp.exp() * performer_logp).sum(-1))
        return (log_ppl / cross).cpu().double().numpy()
    # fast_detectgpt: scoring model = observer, reference (sampling) model = performer
    likelihood = observer_logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    reference = performer_logp.exp()
    mean = (reference * observer_logp).sum(-1)
    variance = (reference * observer_logp.square()).sum(-1) - mean.square()
    numerator = ((likelihood - mean) * mask).sum(-1)
    return (numerator / (variance * mask).sum(-1).clamp(min=1e-12).sqrt()).cpu().double().numpy()


class PairScorer:
    """Both language models and their shared tokenizer, loaded once per process and reused by every fold."""

    _loaded: ClassVar[dict[tuple[str, str, str], PairScorer]] = {}

    def __init__(self, params: LmScoreParams) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        configure_runtime()
        self.device = device()
        on_gpu = self.device.type == "cuda"
        dtype = getattr(torch, TORCH_DTYPES[params.precision]) if on_gpu else torch.float32
        self.tokenizer = load_tokenizer(params.observer, padding_side="right")
        other = load_tokenizer(params.performer, padding_side="right")
        if self.tokenizer.get_vocab() != other.get_vocab():
            raise DaigtError(
                f"lm_score: observer '{params.observer}' and performer '{params.performer}' do not share a "
                "tokenizer; pick two models of one family (e.g. a base model and its instruct version)"
            )
        self.models = [
            from_pretrained(AutoModelForCausalLM, ref, dtype=dtype).to(self.device).eval()
            for ref in (params.observer, params.performer)
        ]

    @classmethod
    def get(cls, params: LmScoreParams) -> PairScorer:
        key = (params.observer, params.performer, params.precision)
        if key not in cls._loaded:
            cls._loaded[key] = cls(params)
        return cls._loaded[key]

    def score(self, texts: Sequence[str], params: LmScoreParams, progress: bool = False) -> np.ndarray:
        import torch

        out = np.zeros(len(texts))
        order = np.argsort([len(t) for t in texts])  # similar lengths share a batch: less padding
        starts = range(0, len(texts), params.batch_size)
        for start in console.bar(starts, enabled=progress, desc=f"{params.method} scores", unit="batch"):
            rows = order[start : start + params.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in rows], truncation=True, max_length=params.max_length, padding=True,
                return_tensors="pt",
            ).to(self.device)  # fmt: skip
            with torch.inference_mode():
                logits = [
                    m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits for m in self.models
                ]
            out[rows] = sequence_scores(*logits, batch["input_ids"], batch["attention_mask"], params.method)
        return out


class LmScoreFamily(ModelFamily):
    """Zero-shot detector: a pair of causal LMs' score, mapped to P(AI); no training (unless ``calibrate``)."""

    requirements = TORCH_STACK
    Params = LmScoreParams
    params: LmScoreParams

    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.scores: dict[str, float] = {}  # text -> score, shared by the folds of a run
        self.map = self._default_map()
        self.progress = False

    def _default_map(self) -> tuple[float, float]:
        """(slope, intercept) of the logistic map from score to P(AI)."""
        center = self.params.center if self.params.center is not None else DEFAULT_CENTER[self.params.method]
        slope = DIRECTION[self.params.method] / self.params.scale
        return slope, -slope * center

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.scores))
        if missing:
            values = PairScorer.get(self.params).score(missing, self.params, self.progress)
            self.scores.update(zip(missing, values.tolist(), strict=True))
        return np.array([self.scores[t] for t in texts], dtype=float)

    def prepare(self, corpus: pd.DataFrame) -> None:
        """Score every essay of the run once (the scores do not depend on the fold)."""
        self.raw_scores(corpus["text"].tolist())

    def fit(self, train: pd.DataFrame, context: FitContext) -> None:
        self.progress = context.progress
        if not self.params.calibrate:
            self.map = self._default_map()
            return
        from sklearn.linear_model import LogisticRegression

        from daigt.families.base import expand_soft_labels

        rows, y, weights = expand_soft_labels(train)
        scores = self.raw_scores(rows["text"].tolist()).reshape(-1, 1)
        model = LogisticRegression(C=1e4).fit(scores, y, sample_weight=weights)
        self.map = float(model.coef_[0, 0]), float(model.intercept_[0])

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        slope, intercept = self.map
        return 1.0 / (1.0 + np.exp(-np.clip(slope * scores + intercept, -50, 50)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.probabilities(self.raw_scores(frame["text"].tolist()))

    @classmethod
    def fold_predictor(cls, models: Sequence[ModelFamily]) -> Callable[[pd.DataFrame], np.ndarray]:
        """Score the essays once with the first fold's models; each fold only maps the scores."""
        folds = [m for m in models if isinstance(m, LmScoreFamily)]

        def predict(frame: pd.DataFrame) -> np.ndarray:
            scores = folds[0].raw_scores(frame["text"].tolist())
            return np.mean([m.probabilities(scores) for m in folds], axis=0)

        return predict

    def fit_report(self) -> dict[str, Any]:
        return {"score_to_probability": {"slope": self.map[0], "intercept": self.map[1]}}

    def save(self, directory: Path) -> None:
        """The parameters and the map; the language models are referenced by name, not copied."""
        payload = {"params": to_dict(self.params), "seed": self.seed, "map": list(self.map)}
        (directory / PARAMS_FILE).write_text(json.dumps(payload, indent=2))

    @classmethod
    def load(cls, directory: Path) -> LmScoreFamily:
        payload = json.loads((directory / PARAMS_FILE).read_text())
        model = cls(parse(LmScoreParams, payload["params"], str(directory / PARAMS_FILE)), payload["seed"])
        model.map = tuple(payload["map"])
        return model

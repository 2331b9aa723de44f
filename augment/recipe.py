"""A recipe: named ops, each with a probability and an intensity, applied deterministically.

Every random choice for an essay comes from a generator seeded by (recipe seed, essay id, copy, op name)
through SHA-256, so the output is the same on any machine, in any order and with any number of workers.
Back-translation rewrites the whole essay and needs a batch engine, so it runs first, on the clean text.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from augment.ops import OPS
from augment.synonyms import synonym
from daigt.errors import DaigtError

ALL_OPS = {**OPS, "synonym": synonym}
BACK_TRANSLATION = "back_translation"
TEXTATTACK = "textattack:"  # textattack:<Augmenter>, only in the textattack environment (textattack_ops.py)


def resolve_op(name: str) -> Callable[[str, random.Random, float], str]:
    if name.startswith(TEXTATTACK):
        from augment.textattack_ops import textattack_op

        return textattack_op(name[len(TEXTATTACK) :])
    return ALL_OPS[name]


@dataclass(frozen=True)
class Step:
    op: str
    p: float = 1.0
    intensity: float = 0.05
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    steps: tuple[Step, ...]
    seed: int = 0
    name: str = "recipe"

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        path = Path(path)
        if not path.is_file():
            raise DaigtError(f"{path}: recipe not found (see configs/augment/)")
        cfg = yaml.safe_load(path.read_text()) or {}
        return cls.from_dict(cfg, name=path.stem)

    @classmethod
    def from_dict(cls, cfg: dict[str, Any], name: str = "recipe") -> Recipe:
        steps = []
        for i, raw in enumerate(cfg.get("ops", [])):
            raw = dict(raw)
            op = raw.pop("op", None)
            if op not in ALL_OPS and op != BACK_TRANSLATION and not str(op).startswith(TEXTATTACK):
                known = ", ".join(sorted([*ALL_OPS, BACK_TRANSLATION]))
                raise DaigtError(f"recipe '{name}', ops[{i}]: unknown op '{op}' (known: {known})")
            p, intensity = float(raw.pop("p", 1.0)), float(raw.pop("intensity", 0.05))
            if not (0 <= p <= 1 and 0 <= intensity <= 1):
                raise DaigtError(f"recipe '{name}', ops[{i}] ({op}): p and intensity must be in [0, 1]")
            steps.append(Step(op, p, intensity, raw))
        if not steps:
            raise DaigtError(f"recipe '{name}' has no ops")
        return cls(tuple(steps), int(cfg.get("seed", 0)), name)

    def only(self, op: str) -> Recipe:
        """The same recipe reduced to one op, always applied (attack mode measures ops one at a time)."""
        step = next(s for s in self.steps if s.op == op)
        return Recipe((Step(op, 1.0, step.intensity, step.options),), self.seed, f"{self.name}:{op}")


def rng_for(seed: int, essay_id: str, copy: int, op: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{essay_id}|{copy}|{op}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class Augmenter:
    """Applies a recipe to batches of essays; holds the back-translation engine, created on first use."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self._engine: Any = None
        self._ops = {s.op: resolve_op(s.op) for s in recipe.steps if s.op != BACK_TRANSLATION}
        for step in recipe.steps:  # a missing engine fails here, before any essay is touched
            if step.op == BACK_TRANSLATION:
                from augment.backtranslate import make_engine

                options = dict(step.options)
                self._engine = make_engine(options.pop("engine", "apertium"), **options)

    def _back_translate(self, texts: list[str]) -> list[str]:
        return self._engine(texts)

    def apply(self, ids: Sequence[str], texts: Sequence[str], copy: int = 1) -> tuple[list[str], list[str]]:
        """Augmented texts and, for each, the ops that fired ("+"-joined, empty when none did)."""
        texts = [str(t) for t in texts]
        applied: list[list[str]] = [[] for _ in texts]
        for step in self.recipe.steps:
            fires = [
                bool(t.strip()) and rng_for(self.recipe.seed, i, copy, step.op + "/p").random() < step.p
                for i, t in zip(ids, texts, strict=True)
            ]
            if step.op == BACK_TRANSLATION:
                chosen = [k for k, f in enumerate(fires) if f]
                if chosen:
                    for k, new in zip(chosen, self._back_translate([texts[k] for k in chosen]), strict=True):
                        texts[k] = new
                        applied[k].append(step.op)
                continue
            fn = self._ops[step.op]
            for k, fire in enumerate(fires):
                if fire:
                    texts[k] = fn(texts[k], rng_for(self.recipe.seed, ids[k], copy, step.op), step.intensity)
                    applied[k].append(step.op)
        return texts, ["+".join(a) for a in applied]

"""A recipe: named ops, each with a probability and an intensity, applied deterministically.

Every random choice for an essay comes from a generator seeded by (recipe seed, essay id, copy, op name)
through SHA-256, so the output is the same on any machine, in any order and with any number of workers.
Back-translation rewrites the whole essay and needs a batch engine, so it runs first, on the clean text.
"""

from __future__ import annotations

import difflib
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from augment.errors import AugmentError
from augment.ops import OPS
from augment.synonyms import synonym

ALL_OPS = {**OPS, "synonym": synonym}
BACK_TRANSLATION = "back_translation"
TEXTATTACK = "textattack:"  # textattack:<Augmenter>, only in the textattack environment (textattack_ops.py)
NLPAUG = "nlpaug:"  # nlpaug:<Augmenter> with the augmenter's arguments (nlpaug_ops.py)


def resolve_op(name: str, options: dict[str, Any] | None = None) -> Callable[[str, random.Random, float], str]:
    if name.startswith(TEXTATTACK):
        from augment.textattack_ops import textattack_op

        return textattack_op(name[len(TEXTATTACK) :])
    if name.startswith(NLPAUG):
        from augment.nlpaug_ops import nlpaug_op

        return nlpaug_op(name[len(NLPAUG) :], dict(options or {}))
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
            raise AugmentError(f"{path}: recipe not found (see configs/augment/)")
        try:
            cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise AugmentError(f"{path}: invalid YAML ({' '.join(str(err).split())})") from None
        return cls.from_dict(cfg, name=path.stem, source=str(path))

    @classmethod
    def from_dict(cls, cfg: Any, name: str = "recipe", source: str | None = None) -> Recipe:
        """Validate as it builds: unknown keys name the closest valid one, values are range-checked."""
        where = source or f"recipe '{name}'"
        if not isinstance(cfg, dict):
            raise AugmentError(f"{where}: expected a mapping with 'ops:' (a list of steps) and 'seed:'")
        _known_keys(where, "", cfg, RECIPE_KEYS)
        ops = cfg.get("ops") or []
        if not isinstance(ops, list) or not ops:
            raise AugmentError(f"{where}: ops: needs a list of steps, e.g. - {{op: char_typo, p: 0.3}}")
        seed = cfg.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise AugmentError(f"{where}: seed: expected an integer, got {seed!r}")
        return cls(tuple(_step(where, i, raw) for i, raw in enumerate(ops)), seed, name)

    def only(self, op: str) -> Recipe:
        """The same recipe reduced to one op, always applied (attack mode measures ops one at a time)."""
        step = next(s for s in self.steps if s.op == op)
        return Recipe((Step(op, 1.0, step.intensity, step.options),), self.seed, f"{self.name}:{op}")


RECIPE_KEYS = ("ops", "seed")
STEP_KEYS = ("op", "p", "intensity")


def _known_keys(where: str, path: str, mapping: dict[str, Any], valid: Sequence[str]) -> None:
    for key in mapping:
        if key not in valid:
            guess = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
            hint = f"did you mean '{guess[0]}'?" if guess else f"valid: {', '.join(valid)}"
            raise AugmentError(f"{where}: {path}{key}: unknown key — {hint}")


def op_options(op: str, options: dict[str, Any]) -> tuple[str, ...]:
    """The option keys a step of ``op`` may carry besides op, p and intensity."""
    if op == BACK_TRANSLATION:
        from augment.backtranslate import engine_options

        return ("engine", *engine_options(str(options.get("engine", "apertium"))))
    if op.startswith(NLPAUG):
        from augment.nlpaug_ops import option_names

        return option_names(op[len(NLPAUG) :])
    return ()


def _step(where: str, i: int, raw: Any) -> Step:
    at = f"ops[{i}]"
    if not isinstance(raw, dict):
        raise AugmentError(f"{where}: {at}: expected a mapping like {{op: char_typo, p: 0.3}}, got {raw!r}")
    raw = dict(raw)
    op = raw.pop("op", None)
    if op not in ALL_OPS and op != BACK_TRANSLATION and not str(op).startswith((TEXTATTACK, NLPAUG)):
        known = sorted([*ALL_OPS, BACK_TRANSLATION])
        guess = difflib.get_close_matches(str(op), known, n=1, cutoff=0.6)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        raise AugmentError(f"{where}: {at}: unknown op '{op}' ({hint}known: {', '.join(known)})")
    values = {}
    for key, default in (("p", 1.0), ("intensity", 0.05)):
        value = raw.pop(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise AugmentError(f"{where}: {at}.{key} ({op}): expected a number in [0, 1], got {value!r}")
        values[key] = float(value)
    _known_keys(where, f"{at}.", raw, (*STEP_KEYS, *op_options(op, raw)))
    return Step(op, values["p"], values["intensity"], raw)


def rng_for(seed: int, essay_id: str, copy: int, op: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{essay_id}|{copy}|{op}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class Augmenter:
    """Applies a recipe to batches of essays; holds the back-translation engine, created on first use."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self._engine: Any = None
        self._ops = {s.op: resolve_op(s.op, s.options) for s in recipe.steps if s.op != BACK_TRANSLATION}
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

"""nlpaug's augmenters as recipe ops: ``op: nlpaug:KeyboardAug`` or ``op: nlpaug:ContextualWordEmbsAug`` with the
augmenter's own arguments beside ``p`` and ``intensity`` (e.g. ``model_path: models/bert-mini``).

``intensity`` sets the augmenter's share of words changed (``aug_p``, or ``aug_word_p`` for character-level
augmenters) unless the step sets it itself. nlpaug draws from the global ``random``, numpy and torch
generators; each essay seeds them from the op's (seed, id, copy, op) generator, so a copy is the same in any
order and with any number of workers. ``ContextualWordEmbsAug`` substitutes words a masked LM finds likely in
context — the paraphrase-like rewrites attacks make — from a local model folder (offline) or a hub id.
"""

from __future__ import annotations

import importlib
import inspect
import random
from collections.abc import Callable
from typing import Any

import numpy as np

from augment.errors import AugmentError

PREFIX = "nlpaug:"
MODULES = ("nlpaug.augmenter.char", "nlpaug.augmenter.word", "nlpaug.augmenter.sentence")
SHARE_ARGUMENTS = ("aug_p", "aug_word_p")  # the first of these an augmenter takes is set from intensity


def augmenter_class(name: str) -> type:
    """The nlpaug augmenter class called ``name`` (e.g. KeyboardAug, SynonymAug, ContextualWordEmbsAug)."""
    known: dict[str, type] = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        known.update({k: v for k, v in vars(module).items() if k.endswith("Aug") and isinstance(v, type)})
    if name not in known:
        import difflib

        guess = difflib.get_close_matches(name, list(known), n=1)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        raise AugmentError(f"nlpaug has no augmenter '{name}' ({hint}known: {', '.join(sorted(known))})")
    return known[name]


def option_names(name: str) -> tuple[str, ...]:
    """The arguments a recipe step may give the augmenter (its constructor's)."""
    return tuple(p for p in inspect.signature(augmenter_class(name).__init__).parameters if p not in ("self", "name"))


def nlpaug_op(name: str, options: dict[str, Any]) -> Callable[[str, random.Random, float], str]:
    cls = augmenter_class(name)
    accepted = option_names(name)
    share = next((a for a in SHARE_ARGUMENTS if a in accepted and a not in options), None)
    augmenters: dict[float, Any] = {}

    def build(intensity: float) -> Any:
        kwargs = dict(options)
        if share is not None:
            kwargs[share] = intensity
        if "device" in accepted:
            kwargs.setdefault("device", "cpu")
        if "use_custom_api" in accepted:  # nlpaug's own BERT wrapper predates transformers 5's tokenizers;
            kwargs.setdefault("use_custom_api", False)  # its fill-mask pipeline path works with them
        try:
            return cls(**kwargs)
        except (OSError, ValueError, TypeError) as err:
            raise AugmentError(f"op '{PREFIX}{name}' could not be built with {options}: {err}") from None

    build(0.1)  # a missing model or a bad argument fails now, before any essay is touched

    def op(text: str, rng: random.Random, intensity: float) -> str:
        if not text.strip():
            return text
        if intensity not in augmenters:
            augmenters[intensity] = build(intensity)
        seed = rng.getrandbits(32)
        random.seed(seed)
        np.random.seed(seed)
        try:
            import torch

            torch.manual_seed(seed)
        except ImportError:  # pragma: no cover - torch is a core requirement
            pass
        out = augmenters[intensity].augment(text)
        if isinstance(out, list):
            out = out[0] if out else text
        return out if isinstance(out, str) and out.strip() else text

    return op

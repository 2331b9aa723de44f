"""textattack's augmenters as recipe ops (``op: textattack:CharSwapAugmenter``), in their own environment.

Only importable in ``.venv-textattack`` (``make textattack-env``): textattack 0.3.11 needs flair, which pins
transformers<5. What it adds over the native ops: its transformation/constraint library (embedding-space
swaps, CheckList perturbations, EDA) and attack recipes. Randomness is made deterministic the same way as
the native ops: the global RNGs textattack uses are seeded from the op's (seed, id, copy, op) generator.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import numpy as np

from augment.errors import AugmentError

PREFIX = "textattack:"


class TextattackMissing(AugmentError):
    pass


def textattack_op(name: str) -> Callable[[str, random.Random, float], str]:
    from augment.synonyms import NLTK_DATA

    os.environ.setdefault("NLTK_DATA", str(NLTK_DATA))  # WordNet + stop words built by set-up; no downloads
    try:
        import textattack.augmentation as ta
    except ImportError as err:
        raise TextattackMissing(
            f"op '{PREFIX}{name}' needs textattack, which lives in its own environment: make textattack-env, then "
            ".venv-textattack/bin/python -m augment ... (see docs/hardening.md: why textattack is separate)"
        ) from err
    if not hasattr(ta, name):
        raise TextattackMissing(f"textattack.augmentation has no '{name}'")
    augmenters: dict[float, object] = {}

    def op(text: str, rng: random.Random, intensity: float) -> str:
        if intensity not in augmenters:
            augmenters[intensity] = getattr(ta, name)(pct_words_to_swap=intensity, transformations_per_example=1)
        seed = rng.getrandbits(32)
        random.seed(seed)
        np.random.seed(seed)
        out = augmenters[intensity].augment(text)
        return out[0] if out else text

    return op

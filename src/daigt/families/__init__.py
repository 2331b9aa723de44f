"""Registry: a config's ``family:`` name -> the class that implements it (imported lazily)."""

from __future__ import annotations

import importlib

from daigt.errors import DaigtError
from daigt.families.base import FitContext, ModelFamily

# Lazy so that the CPU-only TF-IDF path never imports torch.
FAMILIES: dict[str, str] = {
    "tfidf": "daigt.families.tfidf:TfidfFamily",
    "ngram_lm": "daigt.families.ngram_lm:NgramLMFamily",
    "encoder": "daigt.families.transformer:EncoderFamily",
    "causal_lm": "daigt.families.transformer:CausalLMFamily",
}

__all__ = ["FAMILIES", "FitContext", "ModelFamily", "get_family"]


def get_family(name: str) -> type[ModelFamily]:
    if name not in FAMILIES:
        raise DaigtError(f"unknown model family '{name}' (known: {', '.join(sorted(FAMILIES))})")
    module, _, cls = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module), cls)

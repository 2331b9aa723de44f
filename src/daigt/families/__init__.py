"""Registry: a config's ``family:`` name -> the class that implements it (imported lazily).

Adding a family is one line here plus its module (docs/families.md).
"""

from __future__ import annotations

import importlib

from daigt.errors import DaigtError
from daigt.families.base import FitContext, ModelFamily
from daigt.schema import closest

# Lazy so that the CPU-only TF-IDF path never imports torch.
FAMILIES: dict[str, str] = {
    "tfidf": "daigt.families.tfidf:TfidfFamily",
    "ngram_lm": "daigt.families.ngram_lm:NgramLMFamily",
    "reference_lm": "daigt.families.reference_lm:ReferenceLMFamily",
    "encoder": "daigt.families.transformer:EncoderFamily",
    "causal_lm": "daigt.families.transformer:CausalLMFamily",
    "lm_score": "daigt.families.lm_score:LmScoreFamily",
}

__all__ = ["FAMILIES", "FitContext", "ModelFamily", "get_family"]


def get_family(name: str, source: str | None = None) -> type[ModelFamily]:
    if name not in FAMILIES:
        guess = closest(name, FAMILIES)
        hint = f"did you mean '{guess}'? " if guess else ""
        where = f"{source}: family: " if source else ""
        raise DaigtError(f"{where}unknown model family '{name}' ({hint}known: {', '.join(sorted(FAMILIES))})")
    module, _, cls = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module), cls)

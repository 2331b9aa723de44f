"""Which generator family a training text's ``source`` names: the vocabulary of the second task (attribution).

A family is a lineage of models, not a version: ``openai-chat`` covers GPT-3.5, GPT-4 and later chat models.
Each family lists regular expressions matched (case-insensitive, anywhere) against the ``source`` of AI texts,
in the order written: the first family with a match wins. An AI source that names no generator ("mix",
"unknown") matches ``unnamed`` and teaches nothing; any other AI source is a known generator outside the named
families and becomes ``other``. Human texts have no family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from daigt.schema import Invalid

OTHER = "other"
NO_FAMILY = ""  # human texts, and AI texts whose source names no generator

# the sources of train.csv, broad_train.csv and ood_dev.csv, and the usual spellings of the same models
DEFAULT_FAMILIES: dict[str, list[str]] = {
    "openai-chat": [r"gpt-?3\.?5", r"gpt-?4", r"chat_?gpt", r"\bo[134]\b"],
    "openai-completion": [r"davinci", r"curie", r"babbage", r"\bada\b", r"gpt-?3-ada"],
    "mistral": [r"mistral", r"mixtral"],
    "llama": [r"llama"],
    "gpt-2": [r"gpt-?2"],
}
DEFAULT_UNNAMED = [r"unknown", r"\bmix", r"_mix"]


@dataclass
class GeneratorVocabulary:
    """Source-name rules: family -> patterns (first match wins), and the sources that name no generator."""

    # family -> regular expressions matched against an AI text's source (case-insensitive; first family wins)
    families: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_FAMILIES.items()})
    # sources that name no generator ("mix", "unknown"): their texts train no family
    unnamed: list[str] = field(default_factory=lambda: list(DEFAULT_UNNAMED))

    def check(self) -> None:
        if OTHER in self.families:
            raise Invalid(f"'{OTHER}' is implied (a known generator outside the families): remove it", "families")
        if not self.families:
            raise Invalid("name at least one family", "families")
        for name, patterns in {**self.families, "unnamed": self.unnamed}.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as err:
                    key = "unnamed" if name == "unnamed" else f"families.{name}"
                    raise Invalid(f"'{pattern}' is not a regular expression ({err})", key) from None

    def family(self, source: str) -> str:
        """The family an AI text's source names; NO_FAMILY when it names no generator."""
        if not source or any(re.search(p, source, re.IGNORECASE) for p in self.unnamed):
            return NO_FAMILY
        for name, patterns in self.families.items():
            if any(re.search(p, source, re.IGNORECASE) for p in patterns):
                return name
        return OTHER

    def families_of(self, sources: pd.Series, labels: np.ndarray) -> np.ndarray:
        """Each row's family (NO_FAMILY for human rows and unnamed sources), one regex pass per distinct source."""
        names = {s: self.family(s) for s in pd.unique(sources.astype(str))}
        out = sources.astype(str).map(names).to_numpy(dtype=object)
        out[np.asarray(labels) < 0.5] = NO_FAMILY
        return out

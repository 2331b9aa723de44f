"""Model configs: variants with base: merge over the named config instead of copying it."""

from __future__ import annotations

from pathlib import Path

import pytest

from daigt.config import load_model_config
from daigt.errors import DaigtError


def test_variant_overlays_its_base(tmp_path: Path) -> None:
    variant = tmp_path / "variant.yaml"
    variant.write_text(
        "base: tfidf_word\naugment: {recipe: configs/augment/default.yaml}\nparams: {vectorizer: {min_df: 5}}\n"
    )
    name, config = load_model_config(str(variant))
    _, base = load_model_config("tfidf_word")
    assert name == "variant" and "base" not in config
    assert config["params"]["vectorizer"]["min_df"] == 5
    assert config["params"]["vectorizer"]["ngram_range"] == base["params"]["vectorizer"]["ngram_range"]
    assert config["params"]["classifiers"] == base["params"]["classifiers"] and config["family"] == "tfidf"


def test_a_config_cannot_be_its_own_base(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\n")
    with pytest.raises(DaigtError, match="names the config itself"):
        load_model_config(str(loop))

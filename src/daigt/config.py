"""YAML configs: the data/folds set-up, one file per model, one for the blend."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from daigt.errors import DaigtError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"
PROJECT_CONFIG = CONFIG_DIR / "project.yaml"
BLEND_CONFIG = CONFIG_DIR / "blend.yaml"
MODEL_CONFIG_DIR = CONFIG_DIR / "models"


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DaigtError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DaigtError(f"{path}: invalid YAML ({err})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DaigtError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
    return loaded


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively overlay ``override`` on ``base`` (mappings merge, everything else replaces)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def repo_path(path: str | Path) -> Path:
    """Config paths are relative to the repository root, so runs work from any directory."""
    path = Path(path)
    return path if path.is_absolute() else REPO_ROOT / path


def available_models() -> list[str]:
    return sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.yaml"))


def load_model_config(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """``--model tfidf_word`` reads configs/models/tfidf_word.yaml; a path to a YAML file works too.

    ``base: <name>`` makes a variant: the named config with this file's keys merged over it.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} and candidate.is_file():
        path = candidate
    else:
        path = MODEL_CONFIG_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(available_models()) or "none"
            raise DaigtError(f"unknown model '{name_or_path}': no {path} (known: {known})")
    config = load_yaml(path)
    if "base" in config:  # a variant: its keys overlay another model config
        base_name = str(config.pop("base"))
        if Path(base_name).stem == path.stem:
            raise DaigtError(f"{path}: 'base:' names the config itself")
        config = deep_merge(load_model_config(base_name)[1], config)
    if "family" not in config:
        raise DaigtError(f"{path}: missing 'family:' (which model family implements this config)")
    return path.stem, config


def fingerprint(obj: Any) -> str:
    """Stable short hash of a JSON-able object; used to tell whether a finished fold is still valid."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]

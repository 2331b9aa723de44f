"""Model configs resolved beside the family registry: ``configs/models/<name>.yaml`` (a ``base:`` variant, ``--set``
overrides) -> a ``ModelSpec``: the validated config with the family class that implements it, looked up once.

It sits above ``families/`` (it validates ``params:`` against a family's declared ``Params``), so the config
module below stays free of any family."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from daigt.config import MODEL_CONFIG_DIR, ModelConfig, deep_merge, load_yaml, parse_overrides, sets_named
from daigt.errors import DaigtError
from daigt.families import ModelFamily, get_family
from daigt.schema import closest, parse


@dataclass(frozen=True)
class ModelSpec:
    """A model config ready to train: its name (the artifacts folder), the config, and its family."""

    name: str
    config: ModelConfig
    family: type[ModelFamily]
    overrides: tuple[str, ...] = ()  # the --set key=value items merged in (recorded with the folds and in history)

    def with_params(self, **changes: Any) -> ModelSpec:
        return replace(self, config=self.config.with_params(**changes))

    def build(self, seed: int | None = None) -> ModelFamily:
        """An unfitted model of this config (``seed``: None, the config's own)."""
        return self.family(self.config.params, self.config.seed if seed is None else seed)


def available_models() -> list[str]:
    return sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.yaml"))


def load_model_config(name_or_path: str, overrides: Sequence[str] = ()) -> ModelSpec:
    """``--model tfidf_word`` reads configs/models/tfidf_word.yaml; a path to a YAML file works too.

    ``base: <name>`` makes a variant: the named config with this file's keys merged over it. The merged
    config (with ``--set`` overrides) is validated against the family's declared parameters; errors name this
    file. An overridden config is another run key: its folds are trained anew (the others are kept).
    """
    path = model_config_path(name_or_path)
    base = _merged_model_dict(path)
    with sets_named(base, overrides):
        merged = deep_merge(base, parse_overrides(overrides))
        config, family = model_config_from_dict(merged, f"{path} with --set" if overrides else str(path))
    return ModelSpec(path.stem, config, family, tuple(overrides))


def model_config_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if candidate.is_file():
            return candidate
        raise DaigtError(
            f"--model {name_or_path}: no such file (a model is a name in {MODEL_CONFIG_DIR} or a YAML path)"
        )
    path = MODEL_CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = available_models()
        guess = closest(name_or_path, known)
        hint = f"did you mean '{guess}'? " if guess else ""
        raise DaigtError(f"unknown model '{name_or_path}': no {path} ({hint}known: {', '.join(known) or 'none'})")
    return path


def _merged_model_dict(path: Path) -> dict[str, Any]:
    config = load_yaml(path)
    if "base" not in config:
        return config
    base_name = str(config.pop("base"))
    if Path(base_name).stem == path.stem:
        raise DaigtError(f"{path}: 'base:' names the config itself")
    beside = path.parent / f"{base_name}.yaml"  # a variant may name a config in its own folder
    base_path = beside if beside.is_file() and beside != path else model_config_path(base_name)
    base = _merged_model_dict(base_path)
    model_config_from_dict(base, str(base_path))  # a fault in the base is reported against the base file
    return deep_merge(base, config)


def model_config_from_dict(raw: Mapping[str, Any], source: str) -> tuple[ModelConfig, type[ModelFamily]]:
    """The config checked against its family's declared keys, and that family."""
    if "family" not in raw:
        raise DaigtError(f"{source}: missing 'family:' (which model family implements this config)")
    family = get_family(str(raw["family"]), source)
    config = parse(ModelConfig, {**raw, "params": {}}, source)
    config.params = parse(family.Params, raw.get("params") or {}, source, "params")
    if config.augment and config.augment.each_epoch and not family.trains_in_epochs:
        raise DaigtError(
            f"{source}: augment.each_epoch: family '{config.family}' does not train in epochs; "
            "use augment.recipe (copies made once per run) instead"
        )
    if config.weighting and not family.takes_row_weights:
        raise DaigtError(
            f"{source}: weighting: family '{config.family}' does not weigh its training rows; remove weighting:"
        )
    return config, family

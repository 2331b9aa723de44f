"""YAML configs: reading them, and the model config (one file per model under configs/models/).

Each config kind is a dataclass declared by the module that uses it (``ProjectConfig`` in project.py,
``BlendConfig`` in blending.py, ``ServeConfig`` in service.py, each family's ``Params``); ``load_config``
reads a file and validates it with ``daigt.schema``, so an unknown key stops the run with one line.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import pandas as pd
import yaml

from daigt.errors import DaigtError
from daigt.schema import Invalid, parse, to_dict, unknown_key_message

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "configs"
PROJECT_CONFIG = CONFIG_DIR / "project.yaml"
BLEND_CONFIG = CONFIG_DIR / "blend.yaml"
SERVE_CONFIG = CONFIG_DIR / "serve.yaml"
EVALUATE_CONFIG = CONFIG_DIR / "evaluate.yaml"
# the ensemble predict and serve load unless told otherwise: the detector profile's (configs/profiles/detector.yaml)
DEFAULT_ENSEMBLE = "ensemble"
MODEL_CONFIG_DIR = CONFIG_DIR / "models"
PROFILE_DIR = CONFIG_DIR / "profiles"
# the active profile's name: set once by an entry point's --profile, inherited by its worker processes
PROFILE_ENV = "DAIGT_PROFILE"
# what a profile may overlay: each section is merged over the config of its name (project.yaml, blend.yaml...)
PROFILE_SECTIONS = ("project", "blend", "evaluate")

T = TypeVar("T")
SEED_LIMIT = 2**32  # numpy's and scikit-learn's seeds are unsigned 32-bit integers


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                line = key_node.start_mark.line + 1
                raise DuplicateKey(f"'{key}' is given twice (the second at line {line}): keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class DuplicateKey(yaml.YAMLError):
    pass


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DaigtError(f"{path}: config file not found")
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except DuplicateKey as err:
        raise DaigtError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise DaigtError(f"{path}: invalid YAML ({' '.join(str(err).split())})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DaigtError(f"{path}: cannot read the config ({err})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DaigtError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
    return loaded


def load_config(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Read ``path``, overlay the active profile's section for ``cls`` (its ``PROFILE_SECTION``), apply ``--set
    key.path=value`` overrides, and validate it as ``cls`` (unknown keys, wrong types and values are one-line
    errors, the profile's and the overrides' included)."""
    section = getattr(cls, "PROFILE_SECTION", None)
    data, source = profiled_yaml(section, path) if section else (load_yaml(path), str(path))
    source = f"{source} with --set" if overrides else source
    with sets_named(data, overrides):
        return parse(cls, deep_merge(data, parse_overrides(overrides)), source)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def profile_path(name: str) -> Path:
    """``configs/profiles/<name>.yaml``, or ``name`` itself when it is a YAML file's path (a profile of your own)."""
    return Path(name) if name.endswith((".yaml", ".yml")) else PROFILE_DIR / f"{name}.yaml"


def load_profile(name: str) -> dict[str, Any]:
    """``configs/profiles/<name>.yaml``: a mapping from section (project, blend, evaluate) to the keys it sets over
    that section's base config. A profile is a config, not a code path: the sections are validated with the
    configs they change."""
    path = profile_path(name)
    if not path.is_file():
        raise DaigtError(f"--profile {name}: no such profile (have: {', '.join(profile_names()) or 'none'})")
    profile = load_yaml(path)
    for key, value in profile.items():
        if key not in PROFILE_SECTIONS:
            raise DaigtError(f"{path}: {key}: {unknown_key_message(str(key), PROFILE_SECTIONS)}")
        if not isinstance(value, Mapping):
            raise DaigtError(f"{path}: {key}: expected a mapping of {key} config keys, got {type(value).__name__}")
    return profile


def use_profile(name: str | None) -> None:
    """Make ``name`` the active profile of this process and of the workers it starts (None: the base configs)."""
    if name is None:
        os.environ.pop(PROFILE_ENV, None)
        return
    load_profile(name)  # an unknown or malformed profile stops here, before any work
    os.environ[PROFILE_ENV] = name


def active_profile() -> str | None:
    return os.environ.get(PROFILE_ENV) or None


def profiled_yaml(section: str, path: str | Path) -> tuple[dict[str, Any], str]:
    """``path`` read, with the active profile's ``section`` merged over it; and the source to name in errors."""
    data, name = load_yaml(path), active_profile()
    if name is None:
        return data, str(path)
    overlay = load_profile(name).get(section) or {}
    return deep_merge(data, overlay), f"{path} + {profile_path(name)}"


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["params.tokenizer.vocab_size=8000", "seed=1"]`` -> the nested mapping to merge over a config. Values
    are YAML (8000 is a number, [1, 2] a list, null none); the keys are checked with the config they change."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise DaigtError(f"--set {item}: expected key.path=value (e.g. params.tokenizer.vocab_size=8000)")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise DaigtError(f"--set {item}: the value is not valid YAML (quote it: key='a: b')") from None
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise DaigtError(f"--set {item}: '{part}' is set to a value by another --set")
        node[parts[-1]] = parsed
    return out


def added_sections(base: Mapping[str, Any], overrides: Sequence[str]) -> list[str]:
    """The sections a ``--set`` adds that the config lacks (absent or null), e.g. ``params.tokenizer``."""
    added = []
    for item in overrides:
        parts = item.partition("=")[0].strip().split(".")
        node: Any = base
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, Mapping) or node.get(part) is None:
                added.append(".".join(parts[: i + 1]))
                break
            node = node[part]
    return added


@contextmanager
def sets_named(base: Mapping[str, Any], overrides: Sequence[str]) -> Iterator[None]:
    """A config a ``--set`` made invalid by adding a section names that section: the error may be about the
    config's own keys, which fit without it."""
    try:
        yield
    except DaigtError as err:
        added = added_sections(base, overrides)
        if not added:
            raise
        raise DaigtError(f"{err} (the config has no {', '.join(added)}: --set added it)") from None


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


@dataclass
class AugmentSpec:
    """``augment:`` of a model config: training copies, fold-safe (see hardening.py)."""

    recipe: str | None = None  # augment every training essay once per run with this recipe
    copies: int = 1  # augmented copies per training essay
    workers: int = 1  # processes making the copies
    file: str | None = None  # or: copies made beforehand by python -m augment (rows with parent_id)
    each_epoch: str | None = None  # families that train in epochs: a fresh copy of every essay each epoch
    classes: Literal["both", "ai", "human"] = "both"  # whose essays get copies (ai: disguised AI essays)

    def check(self) -> None:
        if not (self.recipe or self.file or self.each_epoch):
            raise Invalid(
                "needs 'recipe:' (copies made once per run), 'file:' (made by python -m augment) or "
                "'each_epoch:' (a fresh copy every epoch)"
            )
        if self.recipe and self.file:
            raise Invalid("give 'recipe:' or 'file:', not both")
        if self.copies < 0 or self.workers < 1:
            raise Invalid("copies must be >= 0 and workers >= 1")


@dataclass
class DeobfuscateSpec:
    """``deobfuscate:``: normalise every text the model sees; ``spelling`` adds the offline spell corrector."""

    spelling: bool = True  # also correct spelling (pyspellchecker, offline) before the model sees the text


@dataclass
class PseudoSpec:
    """``pseudo:``: transductive pseudo-labelling. Each fold's model labels the test essays it is surest about
    (the top and bottom ``share``) and is refitted with them, ``rounds`` times. A fold's pseudo labels come
    from that fold's own model, which never saw the fold's held-out rows, so OOF stays honest."""

    rounds: int = 1  # refits, each adding the test essays the model is surest about
    share: float = 0.1  # of the test essays, at each end
    min_test: int = 200  # fewer test essays: skipped (a demo test file would teach nothing)

    def check(self) -> None:
        if self.rounds < 1 or not 0 < self.share <= 0.5:
            raise Invalid("rounds must be >= 1 and share in (0, 0.5]")


@dataclass
class WeightingSpec:
    """``weighting:``: rows weighted so that no large population drowns the rest. Each (``by`` value, class)
    cell of the fit rows weighs ``count ** -power`` per row, scaled to a mean of 1: power 1 gives every cell the
    same total weight, 0.5 the square root of its size, 0 changes nothing. A copy or pseudo-labelled row
    without a ``by`` value takes its parent's, else counts as one more population."""

    by: Literal["domain", "source", "group"] = "domain"  # the column that names a row's population
    power: float = 1.0  # 1: every population and class weighs the same in total; 0: plain rows

    def check(self) -> None:
        if not 0 <= self.power <= 1:
            raise Invalid(f"must lie in [0, 1], got {self.power}", "power")


@dataclass
class ModelConfig:
    """One model: its family, the family's typed ``params``, seed, and optional hardening."""

    family: str  # the model family (docs/families.md): tfidf, ngram_lm, encoder, causal_lm, ...
    seed: int = 42  # the model's seed (its folds are the project's)
    params: Any = field(default_factory=dict)  # the family's Params dataclass once loaded
    augment: AugmentSpec | None = None
    deobfuscate: DeobfuscateSpec | None = None
    pseudo: PseudoSpec | None = None
    weighting: WeightingSpec | None = None

    def check(self) -> None:
        if not 0 <= self.seed < SEED_LIMIT:
            raise Invalid(f"must lie in [0, 2**32), got {self.seed}", "seed")

    def with_params(self, **changes: Any) -> ModelConfig:
        return replace(self, params=replace(self.params, **changes))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def fingerprint(obj: Any) -> str:
    """Stable short hash of a JSON-able object; used to tell whether a finished fold is still valid."""
    blob = json.dumps(to_dict(obj), sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


def frame_fingerprint(frame: pd.DataFrame, columns: list[str]) -> str:
    """Stable short hash of a frame's columns (content and order): what data a result was computed on."""
    digest = hashlib.sha1()
    for column in columns:
        digest.update(pd.util.hash_pandas_object(frame[column], index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]

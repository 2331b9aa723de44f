"""Training several model configs: one after another in this process, or side by side in worker processes
(``--jobs``, daigt.parallel) within an optional memory budget, then the blend's style features on the first free
worker. What ``src/train_fold.py`` asks for, decided here; each model's folds are ``daigt.train.FoldTrainer``'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pandas as pd

from daigt import distributed
from daigt.artifacts import ModelArtifacts
from daigt.blending import BlendConfig
from daigt.config import BLEND_CONFIG, SEED_LIMIT, load_config
from daigt.errors import DaigtError
from daigt.fold_trainer import FoldTrainer, measure_test_shift
from daigt.model_configs import load_model_config
from daigt.parallel import map_models, parse_memory
from daigt.project import Project
from daigt.shift import MIN_TEST_FOR_SHIFT
from daigt.stylometry import StyleMemo, selected_groups
from essayio import console

BLEND_STYLE = "(the blend's style features)"  # a --jobs job after the models; never a model name (parentheses)


@dataclass(frozen=True)
class TrainRequest:
    """What to train, as the command line said it (picklable: a --jobs worker gets a copy)."""

    project_args: tuple  # Project.load's arguments: a worker loads its own project
    folds: list[int] | None = None  # None: every fold
    overrides: list[str] = field(default_factory=list)  # --set key=value on each model config
    seed: int | None = None  # None: each model config's own
    force: bool = False
    deepspeed: str | None = None
    progress: bool = True  # fold bars (never in a worker)

    def __post_init__(self) -> None:
        """A --seed out of range stops here, before any work (a config's seed is checked with its config)."""
        if self.seed is not None and not 0 <= self.seed < SEED_LIMIT:
            raise DaigtError(f"--seed {self.seed}: give a seed in [0, 2**32)")


def parse_folds(value: str) -> list[int] | None:
    """``all``, a fold number, or a comma list."""
    if value == "all":
        return None
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise DaigtError(f"--fold {value!r}: give a fold number, a comma list, or 'all'") from None


def train_models(
    request: TrainRequest, project: Project, names: list[str], jobs: int = 1, max_memory: str | None = None
) -> None:
    """Every model in ``names``: in a row sharing ``project`` (the data read and checked once), or ``jobs`` at a
    time in worker processes. Each fold's line is said as the fold is written."""
    if jobs > 1 and len(names) > 1:
        _train_in_parallel(request, project, names, jobs, max_memory)
        return
    for name in names:
        train_model(request, name, project)


def train_model(request: TrainRequest, name: str, project: Project | None = None) -> None:
    """Train ``name`` on the requested folds (``project`` None: a --jobs worker, which loads its own)."""
    project = project or _worker_project(request)
    spec = load_model_config(name, request.overrides)
    model_name = spec.name
    if request.deepspeed:
        if not hasattr(spec.config.params, "deepspeed"):
            raise DaigtError(f"--deepspeed: model '{model_name}' ({spec.config.family}) does not train with DeepSpeed")
        spec = spec.with_params(deepspeed=request.deepspeed)
    seed = request.seed if request.seed is not None else spec.config.seed
    trainer = FoldTrainer(project, spec, seed, progress=request.progress)
    folder = ModelArtifacts(project.artifacts, model_name)

    def said(m: dict[str, Any]) -> None:
        console.say(
            f"[{model_name}] fold {m['fold']}: AUC {m['auc']:.4f}  fit {m['fit_seconds']:.1f}s  "
            f"predict {m['predict_seconds']:.1f}s  -> {folder.fold(m['fold']).path}"
        )

    trainer.run(request.folds, force=request.force, on_fold=said)


def _worker_project(request: TrainRequest) -> Project:
    """The project in a --jobs worker: its parent loaded the same data and said its warnings once."""
    project = Project.load(*request.project_args)
    project.warn = False
    return project


def _run_job(request: TrainRequest, job: str) -> None:
    """A ``--jobs`` worker's job: a model (no bars: workers share one terminal), or ``BLEND_STYLE``."""
    if job == BLEND_STYLE:
        warm_blend_style(request)
    else:
        train_model(replace(request, progress=False), job)


def warm_blend_style(request: TrainRequest) -> None:
    """The blend's style features of every essay into their cache (daigt.stylometry.StyleMemo), queued after the
    models: it runs on a core they leave free while the slowest finishes, and the blend then reads the rows
    instead of computing them. A cache only: if it cannot be made, the blend computes the features itself."""
    started = time.perf_counter()
    try:
        cfg = load_config(BlendConfig, BLEND_CONFIG)
        project = _worker_project(request)
        frames = [project.train_frame()[0], project.holdout_frame(), project.test_frame()]
        style = StyleMemo(cfg.features.meta, cfg.features.stylometry, project.cache_dir, jobs=1)
        texts = pd.concat([f["text"] for f in frames], ignore_index=True)
        console.stage(f"[style] features of {texts.nunique():,} essays for the blend")
        style(texts)
    except (DaigtError, OSError) as err:
        console.warn(f"[style] features for the blend not cached ({err}); the blend will compute them")
        return
    seconds = time.perf_counter() - started
    console.say(f"[style] features of {texts.nunique():,} essays cached for the blend in {style.path} ({seconds:.0f}s)")


def _train_in_parallel(request: TrainRequest, project: Project, names: list[str], jobs: int, max_memory: str | None):
    """One process per model, ``jobs`` at a time; then, without a memory budget, the blend's style features on
    the first worker free."""
    if request.deepspeed or distributed.world_size() > 1:
        raise DaigtError("--jobs runs models side by side on CPU; drop it for DeepSpeed or multi-rank runs")
    train, _ = project.train_frame()  # create the shared folds once, before any worker reads them
    test = project.test_frame()  # ... and say what is wrong with the data here, once, not once per worker
    if len(test) >= MIN_TEST_FOR_SHIFT:  # the test shift once, here: every worker reads it from the cache
        measure_test_shift(train, test, project.cache_dir)
    budget, estimates = None, {}
    if max_memory:
        budget = parse_memory(max_memory)
        essays = len(train) + len(project.holdout_frame()) + len(test)
        for name in names:
            per_essay = ModelArtifacts(project.artifacts, load_model_config(name).name).peak_memory_per_essay()
            estimates[name] = None if per_essay is None else per_essay * essays
        console.say(memory_plan(budget, estimates))
    queue = [*names, BLEND_STYLE] if budget is None and _blend_reads_style() else names
    for _ in map_models(partial(_run_job, request), queue, jobs, budget, estimates):
        pass  # each job says its own lines as its folds are written


def _blend_reads_style() -> bool:
    """Whether the blend config asks for style features (a config that does not load: the blend will say why)."""
    try:
        return bool(selected_groups(load_config(BlendConfig, BLEND_CONFIG).features.meta))
    except DaigtError:
        return False


def memory_plan(budget: float, estimates: dict[str, float | None]) -> str:
    """One line: the budget and each model's estimate (unknown ones run alone until they have a record)."""
    parts = [f"{name} {'unknown: runs alone' if mb is None else f'~{mb:,.0f} MiB'}" for name, mb in estimates.items()]
    return f"memory budget {budget:,.0f} MiB: " + ", ".join(parts)

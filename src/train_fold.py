"""Train one model config on K-1 folds and predict the held-out fold and the test set.

python src/train_fold.py --fold 0                       # default model, default data
python src/train_fold.py --fold all --model tfidf_char --train data/train.csv --test data/test_essays.csv
python src/train_fold.py --fold all --model all         # every model listed in configs/project.yaml
python src/train_fold.py --fold all --model all --jobs 2   # ... two models at a time (one per core)
python src/train_fold.py --fold 0 --model minilm --deepspeed configs/deepspeed/zero2.json
torchrun --nproc_per_node=2 src/train_fold.py --fold 0 --model deberta_v3_large --deepspeed configs/deepspeed/zero3.json
deepspeed --num_gpus=8 src/train_fold.py --fold 0 --model mistral_7b_lora
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse
import sys
import time
from functools import partial

import pandas as pd

from daigt import distributed
from daigt.artifacts import ModelArtifacts
from daigt.blending import BlendConfig
from daigt.cli_options import add_project_options, add_set_option, project_args
from daigt.config import BLEND_CONFIG, load_config, load_model_config
from daigt.errors import DaigtError, cli_entry
from daigt.parallel import map_models, parse_memory
from daigt.project import Project
from daigt.stylometry import StyleMemo, selected_groups
from daigt.train import FoldTrainer

BLEND_STYLE = "(the blend's style features)"  # a --jobs job after the models; never a model name (parentheses)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fold", required=True, help="fold number, or 'all'")
    parser.add_argument(
        "--model",
        help="config name under configs/models/, a YAML path, or 'all' "
        "(default: the first of 'models:' in the project config)",
    )
    add_project_options(parser)
    add_set_option(parser, "model config")
    parser.add_argument(
        "--seed", type=int, help="model seed (default: the model config's seed, else 42); the folds keep their own seed"
    )
    parser.add_argument("--force", action="store_true", help="retrain folds that are already up to date")
    parser.add_argument(
        "--deepspeed", help="DeepSpeed JSON config for transformer families (overrides params.deepspeed)"
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)  # set by launchers
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (CI logs)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="with --model all: train this many models at once, each in its own process"
    )
    parser.add_argument(
        "--max-memory",
        help="with --jobs: start a model only when its estimated peak (from its last run, scaled to these essays) "
        "fits beside the running ones; 12G, 8000M, or auto (90%% of free memory)",
    )
    return parser.parse_args(argv)


def parse_folds(value: str) -> list[int] | None:
    if value == "all":
        return None
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise DaigtError(f"--fold {value!r}: give a fold number, a comma list, or 'all'") from None


def train_model(args: argparse.Namespace, name: str, progress: bool, project: Project | None = None) -> list[str]:
    """Train ``name`` on the requested folds; the lines to print, one per fold trained (rank 0 only).

    In a row, the models share ``project`` (the data is read, de-duplicated and checked once); a ``--jobs``
    worker gets None and loads its own."""
    if project is None:
        project = worker_project(args)
    model_name, model_config = load_model_config(name, args.set)
    if args.deepspeed:
        if not hasattr(model_config.params, "deepspeed"):
            raise DaigtError(f"--deepspeed: model '{model_name}' ({model_config.family}) does not train with DeepSpeed")
        model_config = model_config.with_params(deepspeed=args.deepspeed)
    seed = args.seed if args.seed is not None else model_config.seed
    trainer = FoldTrainer(project, model_name, model_config, seed, progress=progress)
    results = trainer.run(parse_folds(args.fold), force=args.force)
    return [
        f"[{model_name}] fold {m['fold']}: AUC {m['auc']:.4f}  fit {m['fit_seconds']:.1f}s  "
        f"predict {m['predict_seconds']:.1f}s  -> {ModelArtifacts(project.artifacts, model_name).fold(m['fold']).path}"
        for m in (results if distributed.is_main() else [])
    ]


def worker_project(args: argparse.Namespace) -> Project:
    """The project in a --jobs worker: its parent loaded the same data and printed its warnings once."""
    project = Project.load(*project_args(args))
    project.warn = False
    return project


def run_job(args: argparse.Namespace, job: str) -> list[str]:
    """A ``--jobs`` worker's job: a model, or ``BLEND_STYLE``."""
    return warm_blend_style(args) if job == BLEND_STYLE else train_model(args, job, progress=False)


def warm_blend_style(args: argparse.Namespace) -> list[str]:
    """The blend's style features of every essay into their cache (daigt.stylometry.StyleMemo), queued after the
    models: it runs on a core they leave free while the slowest finishes, and the blend then reads the rows
    instead of computing them. A cache only: if it cannot be made, the blend computes the features itself."""
    started = time.perf_counter()
    try:
        cfg = load_config(BlendConfig, BLEND_CONFIG)
        project = worker_project(args)
        frames = [project.train_frame()[0], project.holdout_frame(), project.test_frame()]
        style = StyleMemo(cfg.features.meta, cfg.features.stylometry, project.cache_dir, jobs=1)
        texts = pd.concat([f["text"] for f in frames], ignore_index=True)
        style(texts)
    except (DaigtError, OSError) as err:
        return [f"[blend] style features not cached ({err}); the blend will compute them"]
    seconds = time.perf_counter() - started
    return [f"[blend] style features of {texts.nunique():,} essays cached in {style.path} ({seconds:.0f}s)"]


def train_in_parallel(args: argparse.Namespace, project: Project, names: list[str]) -> None:
    """One process per model, ``--jobs`` at a time (daigt.parallel); then, without a memory budget, the blend's
    style features on the first worker free (``warm_blend_style``)."""
    if args.deepspeed or distributed.world_size() > 1:
        raise DaigtError("--jobs runs models side by side on CPU; drop it for DeepSpeed or multi-rank runs")
    train, _ = project.train_frame()  # create the shared folds once, before any worker reads them
    test = project.test_frame()  # ... and say what is wrong with the data here, once, not once per worker
    budget, estimates = None, {}
    if args.max_memory:
        budget = parse_memory(args.max_memory)
        essays = len(train) + len(project.holdout_frame()) + len(test)
        for name in names:
            per_essay = ModelArtifacts(project.artifacts, load_model_config(name)[0]).peak_memory_per_essay()
            estimates[name] = None if per_essay is None else per_essay * essays
        print(memory_plan(budget, estimates), flush=True)
    jobs = [*names, BLEND_STYLE] if budget is None and blend_reads_style() else names
    for lines in map_models(partial(run_job, args), jobs, args.jobs, budget, estimates):
        print("\n".join(lines), flush=True)


def blend_reads_style() -> bool:
    """Whether the blend config asks for style features (a config that does not load: the blend will say why)."""
    try:
        return bool(selected_groups(load_config(BlendConfig, BLEND_CONFIG).features.meta))
    except DaigtError:
        return False


def memory_plan(budget: float, estimates: dict[str, float | None]) -> str:
    """One line: the budget and each model's estimate (unknown ones run alone until they have a record)."""
    parts = [f"{name} {'unknown: runs alone' if mb is None else f'~{mb:,.0f} MiB'}" for name, mb in estimates.items()]
    return f"memory budget {budget:,.0f} MiB: " + ", ".join(parts)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    project = Project.load(*project_args(args))
    parse_folds(args.fold)  # a bad --fold fails before any work
    if args.jobs < 1:
        raise DaigtError(f"--jobs {args.jobs}: give 1 or more")
    if args.max_memory:
        parse_memory(args.max_memory)  # a bad size fails before any work
    names = project.models if args.model == "all" else [args.model or (project.models or ["tfidf_word"])[0]]
    for name in names:
        load_model_config(name, args.set)  # a missing or bad model config (or --set) fails before the data is read
    if not args.no_progress and distributed.is_main() and sys.stderr.isatty():  # a refusal stays one line in logs
        print(f"[data] reading {project.train_path}, de-duplicating, drawing the folds...", file=sys.stderr, flush=True)
    summary = project.summary()  # every rank reads the data, as its trainer would
    if distributed.is_main():
        print(summary, flush=True)
    if args.jobs > 1 and len(names) > 1:
        train_in_parallel(args, project, names)
        return
    for name in names:
        for line in train_model(args, name, not args.no_progress, project):
            print(line, flush=True)
    distributed.shutdown()  # ranks leave together (after an error, the launcher ends the others)


if __name__ == "__main__":
    main()

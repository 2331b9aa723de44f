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

from daigt import distributed
from daigt.cli_options import add_project_options, add_set_option, parse_options, project_args
from daigt.errors import DaigtError, cli_entry
from daigt.model_configs import load_model_config
from daigt.parallel import parse_memory
from daigt.project import Project
from daigt.training import TrainRequest, parse_folds, train_models
from essayio import console

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
    parser.add_argument(
        "--jobs", type=int, default=1, help="with --model all: train this many models at once, each in its own process"
    )
    parser.add_argument(
        "--max-memory",
        help="with --jobs: start a model only when its estimated peak (from its last run, scaled to these essays) "
        "fits beside the running ones; 12G, 8000M, or auto (90%% of free memory)",
    )
    return parse_options(parser, argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    project = Project.load(*project_args(args))
    folds = parse_folds(args.fold)  # a bad --fold fails before any work
    if args.jobs < 1:
        raise DaigtError(f"--jobs {args.jobs}: give 1 or more")
    if args.max_memory:
        parse_memory(args.max_memory)  # a bad size fails before any work
    request = TrainRequest(project_args(args), folds, args.set, args.seed, args.force, args.deepspeed)  # --seed
    names = project.models if args.model == "all" else [args.model or project.first_model()]
    for name in names:
        load_model_config(name, args.set)  # a missing or bad model config (or --set) fails before the data is read
    if distributed.is_main() and sys.stderr.isatty():  # at a terminal: what the first seconds are spent on
        console.stage(f"[data] reading {project.train_path}, de-duplicating, drawing the folds...")
    summary = project.summary()  # every rank reads the data, as its trainer would
    if distributed.is_main():
        console.say(summary)
    train_models(request, project, names, args.jobs, args.max_memory)
    distributed.shutdown()  # ranks leave together (after an error, the launcher ends the others)


if __name__ == "__main__":
    main()

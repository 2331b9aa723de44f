"""The options entry points share, declared once: which project, data, artifacts, sample and overrides.

Entry points add them with these helpers and pass the parsed values on (``Project.load(*project_args(args))``);
help texts say the same thing everywhere."""

from __future__ import annotations

import argparse


def add_project_options(
    parser: argparse.ArgumentParser, *, test: str | None = "test essays to predict", artifacts: str = "fold models"
) -> None:
    """--config, --train, --test (unless ``test`` is None), --artifacts and --sample."""
    parser.add_argument("--config", help="project config (default: configs/project.yaml)")
    parser.add_argument(
        "--train", nargs="+", help="training essays (default: 'train:' in the project config); several read as one"
    )
    if test is not None:
        parser.add_argument("--test", help=f"{test} (default: 'test:' in the project config)")
    parser.add_argument("--artifacts", help=f"where the {artifacts} are (default: 'artifacts:' in the project config)")
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="a quick run on N training essays (stratified, seeded), with folds and artifacts of its own "
        "(sample-N/); give the same N to train_fold, evaluate and blend",
    )


def add_set_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a key of the {what} (repeatable; dotted keys, YAML values), e.g. --set {_EXAMPLES[what]}",
    )


_EXAMPLES = {
    "model config": "params.tokenizer.vocab_size=8000",
    "blend config": "decisions.target_fpr=0.005",
}


def project_args(args: argparse.Namespace) -> tuple:
    """Project.load's arguments from the parsed options."""
    return args.config, args.train, getattr(args, "test", None), args.artifacts, args.sample

"""The options entry points share, declared once: which project, data, artifacts, sample and overrides.

Entry points add them with these helpers and pass the parsed values on (``Project.load(*project_args(args))``);
help texts say the same thing everywhere."""

from __future__ import annotations

import argparse
from typing import NamedTuple

from daigt.config import use_profile
from essayio import console


def add_project_options(
    parser: argparse.ArgumentParser, *, test: str | None = "test essays to predict", artifacts: str = "fold models"
) -> None:
    """--profile, --config, --train, --test (unless ``test`` is None), --artifacts and --sample."""
    add_profile_option(parser)
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


def add_profile_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        help="a profile of configs/profiles/ (or a YAML path) laid over the project, blend and evaluate configs (e.g. "
        "detector: the broad ensemble predict and serve load); default: the base configs (the Kaggle route)",
    )


def apply_profile(args: argparse.Namespace) -> None:
    """Activate ``--profile`` for this process and its workers (an unknown profile is one line, before any work)."""
    use_profile(getattr(args, "profile", None))


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
    "evaluate config": "loso.min_essays=30",
    "serve config": "limits.max_essays=128",
}


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--quiet (or --no-progress), --verbose: how much a run says on stderr (essayio.console), alike everywhere."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", "-q", action="store_true", help="results and warnings only: no stage lines or bars")
    group.add_argument("--no-progress", action="store_true", help="the same as --quiet (for logs and scripts)")
    group.add_argument("--verbose", "-v", action="store_true", help="also the details of each stage")


def parse_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Every entry point's last step of parsing: the output options added, ``argv`` parsed, the output level
    (and profile) set before anything is said."""
    add_output_options(parser)
    args = parser.parse_args(argv)
    configure_output(args)
    return args


def configure_output(args: argparse.Namespace) -> None:
    """Set the output level from ``add_output_options``'s flags, for this process and its workers; and the
    profile, when the entry point offers one (every entry point calls this first)."""
    apply_profile(args)
    quiet = args.quiet or args.no_progress
    console.configure(console.QUIET if quiet else console.VERBOSE if args.verbose else console.NORMAL)


class ProjectArgs(NamedTuple):
    """Project.load's arguments, as the shared options give them (``Project.load(*project_args(args))``); a
    tuple, so it crosses into ``--jobs`` worker processes as it is."""

    config: str | None
    train: list[str] | None
    test: str | None
    artifacts: str | None
    sample: int | None


def project_args(args: argparse.Namespace) -> ProjectArgs:
    """Project.load's arguments from the parsed options."""
    return ProjectArgs(args.config, args.train, getattr(args, "test", None), args.artifacts, args.sample)

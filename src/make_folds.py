"""Create (or, with --force, rebuild) the shared fold assignment in folds/.

Every model reads this one file, so out-of-fold predictions from different models line up and stack.
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse

from daigt.cli_options import parse_options
from daigt.errors import cli_entry
from daigt.project import Project
from essayio import console


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--train",
        nargs="+",
        help="training essays (default: 'train:' in the project config); several files are read as one",
    )
    parser.add_argument("--config", help="project config (default: configs/project.yaml)")
    parser.add_argument("--force", action="store_true", help="re-draw even if a folds file exists")
    args = parse_options(parser, argv)
    project = Project.load(args.config, train=args.train)
    frame, dedup = project.train_frame(rebuild_folds=args.force)
    counts = frame.groupby("fold")["label"].agg(rows="size", ai_share="mean").round(3)
    console.say(
        f"folds: {project.folds_path} ({len(frame)} essays, {project.folds.n_folds} folds, seed {project.folds.seed})"
    )
    console.say(f"duplicates: {dedup}")
    console.say(counts.to_string())


if __name__ == "__main__":
    main()

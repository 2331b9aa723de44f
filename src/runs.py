"""Experiment history: every blend run, one row each; or which configs changed between two runs.

python src/runs.py                                # every run: time, commit, pick, OOF / holdout / held-out AUC
python src/runs.py --model tfidf_bpe --sort loso  # runs that blended tfidf_bpe, best held-out-source mean first
python src/runs.py diff 20261122-101500 20261122-113000   # config keys that differ (run ids, or prefixes)
python src/runs.py prune                          # delete fold folders kept from earlier configs

A retrain under a changed config keeps the folds it replaces (artifacts/<model>/.kept/<run key>/); going back
to that config restores them instead of retraining, until they are pruned.
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse
from pathlib import Path

from daigt import history
from daigt.artifacts import ModelArtifacts, model_names
from daigt.cli_options import parse_options
from daigt.config import PROJECT_CONFIG, load_config, repo_path
from daigt.errors import cli_entry
from daigt.project import ProjectConfig
from essayio import console


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="*", help="nothing (list), diff RUN_A RUN_B, or prune")
    parser.add_argument(
        "--history", type=Path, default=repo_path(history.HISTORY), help="history file (default: runs/history.jsonl)"
    )
    parser.add_argument(
        "--sort", choices=sorted(history.SORTS), default="time", help="order of the rows (default: time)"
    )
    parser.add_argument("--model", help="only runs that blended this model (prune: only this model's kept folds)")
    parser.add_argument("--artifacts", type=Path, help="prune: the artifacts root (default: 'artifacts:' in project)")
    args = parse_options(parser, argv)
    if args.command == ["prune"]:
        root = args.artifacts or repo_path(load_config(ProjectConfig, PROJECT_CONFIG).artifacts)
        names = [args.model] if args.model else model_names(root)
        freed = {name: ModelArtifacts(root, name).prune_kept() for name in names}
        pruned = {name: size for name, size in freed.items() if size}
        mib = sum(pruned.values()) / 2**20
        console.say(f"pruned the kept folds of {len(pruned)} model(s) under {root}: {mib:.1f} MiB freed")
        return
    records = history.read(args.history)
    if not args.command:
        console.say(history.table(records, args.sort, args.model))
    elif args.command[0] == "diff" and len(args.command) == 3:
        console.say(history.diff(history.find(records, args.command[1]), history.find(records, args.command[2])))
    else:
        parser.error("use no command (list), diff RUN_A RUN_B, or prune")


if __name__ == "__main__":
    main()

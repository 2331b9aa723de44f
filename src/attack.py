"""Score a trained model's held-out folds under attack: clean, each op of a recipe alone, the whole recipe.

python src/attack.py --model tfidf_word --train ../shared/data/train.csv --essays 1000

Writes artifacts/<model>/attack/ (attack.md, attack.json, attack.png) and prints the table.
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse

from augment.recipe import Recipe
from daigt.artifacts import ModelArtifacts
from daigt.attack import attack, markdown, write_report
from daigt.cli_options import add_project_options, parse_options, project_args
from daigt.config import CONFIG_DIR
from daigt.errors import cli_entry
from daigt.project import Project
from essayio import console


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained model under artifacts/")
    parser.add_argument(
        "--recipe", default=str(CONFIG_DIR / "augment" / "attack.yaml"), help="the attacks (an augment recipe)"
    )
    add_project_options(parser, test=None, artifacts="model's folds")
    parser.add_argument("--essays", type=int, metavar="N", help="attack a stratified sample of N essays (default: all)")
    args = parse_options(parser, argv)
    project = Project.load(*project_args(args))
    report = attack(project, args.model, Recipe.load(args.recipe), args.essays)
    write_report(ModelArtifacts(project.artifacts, args.model).attack_dir, report)
    console.say(markdown(report))


if __name__ == "__main__":
    main()

"""Score a trained model's held-out folds under attack: clean, each op of a recipe alone, the whole recipe.

python src/attack.py --model tfidf_word --train ../shared/data/train.csv --sample 1000

Writes artifacts/<model>/attack/ (attack.md, attack.json, attack.png) and prints the table.
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse

from augment.recipe import Recipe
from daigt.artifacts import ModelArtifacts
from daigt.attack import attack, markdown, write_report
from daigt.cli_options import add_output_options, configure_output
from daigt.config import CONFIG_DIR
from daigt.errors import cli_entry
from daigt.project import Project


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained model under artifacts/")
    parser.add_argument(
        "--recipe", default=str(CONFIG_DIR / "augment" / "attack.yaml"), help="the attacks (an augment recipe)"
    )
    parser.add_argument("--config", help="project config (default: configs/project.yaml)")
    parser.add_argument(
        "--train", nargs="+", help="the training essays the model was trained on; several files are read as one"
    )
    parser.add_argument("--artifacts", help="where the model's folds are")
    parser.add_argument("--sample", type=int, help="score a stratified sample of this many essays")
    add_output_options(parser)
    args = parser.parse_args(argv)
    configure_output(args)
    project = Project.load(args.config, args.train, None, args.artifacts)
    report = attack(project, args.model, Recipe.load(args.recipe), args.sample)
    write_report(ModelArtifacts(project.artifacts, args.model).attack_dir, report)
    print(markdown(report))


if __name__ == "__main__":
    main()

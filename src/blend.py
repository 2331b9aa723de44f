"""Blend the models `models:` lists (rank mean, LightGBM stacker); write submissions/submission.csv (id,generated).

python src/blend.py
python src/blend.py --train data/train.csv --test data/test_essays.csv --out submissions/submission.csv
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse
from pathlib import Path

from daigt.blending import BlendConfig, blend, experiment_ensemble
from daigt.cli_options import add_project_options, add_set_option, parse_options, project_args
from daigt.config import BLEND_CONFIG, load_config, repo_path
from daigt.errors import cli_entry
from daigt.project import Project
from daigt.report import summary_lines
from essayio import atomic, console
from essayio.outputs import output_file


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blend-config", default=str(BLEND_CONFIG), help="stacker config (configs/blend.yaml)")
    add_project_options(parser, test="test essays the models predicted")
    add_set_option(parser, "blend config")
    parser.add_argument(
        "--sample-submission",
        type=Path,
        help="sample_submission.csv to validate against (default: the one next to the test file, if any)",
    )
    parser.add_argument(
        "--out",
        type=output_file("submission.csv"),
        help="submission path; a folder (trailing /) gets submission.csv (default: 'output:' in the blend config)",
    )
    parser.add_argument(
        "--ensemble",
        type=Path,
        help="where to save the ensemble for predict/serve (default: 'ensemble:' in the config; with --out or "
        "--artifacts, ensemble/ beside the submission, so an experiment leaves the shared one alone)",
    )
    parser.add_argument(
        "--history", type=Path, help="experiment history to append to (default: 'history:' in the config)"
    )
    args = parse_options(parser, argv)
    cfg = load_config(BlendConfig, args.blend_config, args.set)
    project = Project.load(*project_args(args))
    out = args.out or repo_path(cfg.output)
    atomic.refuse_input_as_output(out, [*project.train_paths, project.test_path], "--out")
    ensemble = experiment_ensemble(out, args.ensemble, experiment=bool(args.out or args.artifacts))
    result = blend(project, cfg, out, args.sample_submission, ensemble, history=args.history, overrides=args.set)
    for line in summary_lines(result.report, out):
        console.say(line)


if __name__ == "__main__":
    main()

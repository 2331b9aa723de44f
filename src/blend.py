"""Blend the models `models:` lists (rank mean, LightGBM stacker); write submissions/submission.csv (id,generated).

python src/blend.py
python src/blend.py --train data/train.csv --test data/test_essays.csv --out submissions/submission.csv
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse
from pathlib import Path

from daigt.blending import BlendConfig, blend
from daigt.cli_options import add_output_options, add_project_options, add_set_option, configure_output, project_args
from daigt.config import BLEND_CONFIG, load_config, repo_path
from daigt.errors import cli_entry
from daigt.project import Project
from essayio import atomic
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
    add_output_options(parser)
    args = parser.parse_args(argv)
    configure_output(args)
    cfg = load_config(BlendConfig, args.blend_config, args.set)
    project = Project.load(*project_args(args))
    out = args.out or repo_path(cfg.output)
    atomic.refuse_input_as_output(out, [*project.train_paths, project.test_path], "--out")
    ensemble = args.ensemble
    if ensemble is None and (args.out or args.artifacts):  # an experiment: never replace what predict/serve load
        ensemble = out.parent / "ensemble"
    result = blend(project, cfg, out, args.sample_submission, ensemble, history=args.history, overrides=args.set)
    report = result.report
    width = max(len(n) for n in report["candidates"])
    for name, row in report["candidates"].items():
        folds = " ".join(f"{v:.4f}" for v in row["fold_auc"])
        holdout = "  n/a " if row["holdout_auc"] is None else f"{row['holdout_auc']:.4f}"
        print(f"{name:<{width}}  OOF AUC {row['oof_auc']:.4f}  holdout AUC {holdout}   folds: {folds}")
    print(f"picked {report['picked']} (OOF AUC {report['picked_oof_auc']:.4f}) -> {out}")
    t = report["thresholds"]
    print(f"report: {out.parent / 'report.md'}  plot: {out.parent / 'roc.png'}  errors: {out.parent / 'analysis.md'}")
    cut = f"ai cut {t['high']:.4f} ({t['cut_from']}), unknown below {t['low']:.4f}"
    print(f"ensemble: {report['ensemble']}  ({cut}; predict and serve load ensemble/ unless given --ensemble)")


if __name__ == "__main__":
    main()

"""Generalization: refit the whole pipeline without each source (each prompt, each domain) and score the held-out
essays.

python src/evaluate.py --jobs 2                          # every model of configs/project.yaml
python src/evaluate.py --models tfidf_word ngram_lm     # a subset (candidates are built from these)
python src/evaluate.py --train data/train.csv data/ood_dev.csv  # also leave-one-domain-out

Writes submissions/generalization.json, .md and .png; src/blend.py embeds them in its report and, with
``pick: auto``, picks the candidate with the best mean held-out-source AUC. Splits already computed for the
same model config and data are reused (artifacts/<model>/generalization/).
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse
import time
from functools import partial
from pathlib import Path

from daigt import generalization, report
from daigt.blending import BlendConfig
from daigt.cli_options import add_project_options, add_set_option, parse_options, project_args
from daigt.config import BLEND_CONFIG, EVALUATE_CONFIG, load_config, repo_path
from daigt.errors import DaigtError, cli_entry
from daigt.parallel import map_models
from daigt.project import Project
from essayio import atomic, console


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", help="model configs (default: 'models:' of the project config)")
    parser.add_argument("--eval-config", default=str(EVALUATE_CONFIG), help="protocols (configs/evaluate.yaml)")
    parser.add_argument("--blend-config", default=str(BLEND_CONFIG), help="stacker config (configs/blend.yaml)")
    add_project_options(parser, test=None, artifacts="split predictions")
    add_set_option(parser, "evaluate config")
    parser.add_argument("--out", type=Path, help="results JSON (default: 'output:' in the evaluate config)")
    parser.add_argument("--jobs", type=int, default=1, help="models evaluated side by side, one process each")
    args = parse_options(parser, argv)
    if args.jobs < 1:
        raise DaigtError(f"--jobs {args.jobs}: give 1 or more")
    cfg = load_config(generalization.EvaluateConfig, args.eval_config, args.set)
    blend_cfg = load_config(BlendConfig, args.blend_config)
    project = Project.load(*project_args(args))
    atomic.refuse_input_as_output(args.out, list(project.train_paths), "--out")
    names = args.models or project.models
    if not names:
        raise DaigtError("no models: list them under 'models:' in the project config or pass --models")
    project.train_frame()  # holdout and folds drawn once, before any worker reads them
    started = time.perf_counter()
    work = partial(
        generalization.run_model_job, project_args(args), cfg, progress=not args.no_progress and args.jobs == 1
    )
    # each model's splits in --jobs parts, so the slowest model does not leave the other cores idle
    jobs = [(name, part, args.jobs) for name in names for part in range(args.jobs)]
    for lines in map_models(work, jobs, args.jobs):
        if lines:
            console.say("\n".join(lines))
    result = generalization.evaluate(project, names, blend_cfg, cfg, progress=not args.no_progress)
    result["seconds"] = round(time.perf_counter() - started, 1)
    out = args.out or repo_path(cfg.output)
    for line in report.write_generalization(out, result):
        console.say(line)


if __name__ == "__main__":
    main()

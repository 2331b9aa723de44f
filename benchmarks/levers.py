"""The README's lever table: each model config alone, scored in-distribution and on held-out groups.

For every config: 5-fold OOF AUC and locked-holdout AUC (src/train_fold.py), then mean / minimum AUC over
held-out sources and held-out prompts (src/evaluate.py with that one model). Runs the real entry points into
one artifacts folder, so a rerun only computes what changed.

    python benchmarks/levers.py --train ../shared/data/train.csv --test ../shared/data/test_essays.csv \\
        tfidf_word configs/experiments/tfidf_word_pseudo.yaml ...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from workspace import isolated_project

from daigt.artifacts import ModelArtifacts
from daigt.metrics import auc
from daigt.model_configs import load_model_config
from daigt.project import Project

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> None:
    done = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model config names or YAML paths")
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--work", default="bench-results/levers", help="artifacts and folds (reused by reruns)")
    parser.add_argument("--no-heldout", action="store_true", help="OOF and holdout only (skip src/evaluate.py)")
    args = parser.parse_args()
    work = (ROOT / args.work).resolve()
    config = isolated_project(work)
    project = yaml.safe_load(config.read_text())
    data = ["--config", str(config), "--train", args.train]
    rows = []
    for model in args.models:
        name = load_model_config(model).name
        run(["src/train_fold.py", "--fold", "all", "--model", model, *data, "--test", args.test, "--no-progress"])
        folds = [ModelArtifacts(work / "artifacts", name).fold(k) for k in range(project["folds"]["n_folds"])]
        summary: dict = {"loso": {name: None}}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "generalization.json"
            if not args.no_heldout:
                run(["src/evaluate.py", "--models", model, *data, "--artifacts", str(work / "artifacts"), "--out",
                     str(out), "--no-progress"])  # fmt: skip
                summary = json.loads(out.read_text())["summary"]
        oof, holdout = _aucs(folds, Project.load(config, args.train))
        rows.append((name, oof, holdout, summary["loso"][name], summary.get("lopo", {}).get(name)))
    print("| model config | OOF AUC | holdout AUC | held-out sources: mean | min | held-out prompts: mean | min |")
    print("|---|---|---|---|---|---|---|")
    for name, oof, holdout, loso, lopo in rows:
        prompts = f"{lopo['mean']:.4f} | {lopo['min']:.4f}" if lopo else "— | —"
        sources = f"{loso['mean']:.4f} | {loso['min']:.4f}" if loso else "— | —"
        print(f"| {name} | {oof:.4f} | {holdout:.4f} | {sources} | {prompts} |", flush=True)


def _aucs(folds: list, project: Project) -> tuple[float, float]:
    """OOF AUC, and the holdout AUC of the fold models' mean prediction (as blend scores it)."""
    oof = pd.concat([f.oof() for f in folds], ignore_index=True)
    holdout = project.holdout_frame()
    preds = np.mean([f.scored("holdout").set_index("id").loc[holdout["id"], "pred"] for f in folds], axis=0)
    return auc(oof["label"], oof["pred"]), auc(holdout["label"], preds)


if __name__ == "__main__":
    main()

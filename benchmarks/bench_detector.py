"""The detector profile's budget: `make detector`'s three steps (train every model, hold out each genre, blend)
from scratch in a private workspace, each step's wall time and peak memory, medians over --repeats.

python benchmarks/bench_detector.py --data ../shared/data --repeats 3

The profile is configs/profiles/detector.yaml with its outputs moved under the workspace, so the repository's
own artifacts/, folds/, submissions/ and ensemble/ are never touched.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from workspace import measured

from daigt.config import profile_path

FILES = ("train.csv", "broad_train.csv", "ood_dev.csv")  # what make detector trains on, where present


def private_profile(home: Path) -> Path:
    """The detector profile with every output under ``home``."""
    profile = yaml.safe_load(profile_path("detector").read_text())
    project, blend, evaluate = profile["project"], profile["blend"], profile["evaluate"]
    project["artifacts"] = str(home / "artifacts")
    project["folds"]["path"] = str(home / "folds" / "folds.csv")
    project["holdout"]["path"] = str(home / "folds" / "holdout.csv")
    evaluate["output"] = blend["generalization"] = str(home / "generalization.json")
    blend["output"] = str(home / "submission.csv")
    blend["ensemble"] = str(home / "ensemble")
    blend["history"] = str(home / "history.jsonl")
    path = home / "detector.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def run_once(data: Path, jobs: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-detector-") as tmp:
        home = Path(tmp)
        profile = str(private_profile(home))
        train = [str(data / name) for name in FILES if (data / name).is_file()]
        test = ["--test", str(data / "test_essays.csv")]
        steps = {
            "train": ["train_fold", "--fold", "all", "--model", "all", "--jobs", str(jobs), "--train", *train, *test],
            "evaluate": ["evaluate", "--jobs", str(jobs), "--train", *train],
            "blend": ["blend", "--train", *train, *test],
        }
        return {
            step: measured([sys.executable, f"src/{entry}.py", "--profile", profile, "--quiet", *rest])
            for step, (entry, *rest) in steps.items()
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data"), help="folder with train.csv, broad_train.csv...")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    runs = []
    for i in range(args.repeats):
        runs.append(run_once(args.data.resolve(), args.jobs))
        steps = ", ".join(f"{k} {s:.1f} s" for k, (s, _) in runs[-1].items())
        print(f"run {i + 1}: {steps}; total {sum(s for s, _ in runs[-1].values()):.1f} s", flush=True)
    print(f"\n| step | wall s (median of {args.repeats}) | peak MiB (max) |\n|---|---|---|")
    for step in runs[0]:
        seconds = statistics.median(r[step][0] for r in runs)
        print(f"| {step} | {seconds:.1f} | {max(r[step][1] for r in runs):,.0f} |")
    totals = [sum(s for s, _ in r.values()) for r in runs]
    peak = max(m for r in runs for _, m in r.values())
    print(f"| make detector | {statistics.median(totals):.1f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()

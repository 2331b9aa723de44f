"""How the default pipeline scales with the training set: wall time and peak memory per stage at 1x, 4x, 10x...

Each size k is the training file (or its first --base essays) plus k-1 augmented copies of every essay
(`python -m augment`, the student recipe's cheap character and punctuation ops). Copies carry ``parent_id``,
so an essay and its copies share a fold and a holdout side: no leak across folds, whatever the size. Every
size runs the default models (configs/project.yaml, `--jobs 2`) and the blend in its own workspace under
--work, emptied first (a user's first run: de-duplication, folds and caches included); each stage runs in a
fresh process whose children's peak resident memory is read when it ends.

    python benchmarks/bench_scale.py --train ../shared/data/train.csv --test ../shared/data/test_essays.csv \
        --scales 1 4 10
    python benchmarks/bench_scale.py ... --base 1000 --scales 1 4 --max-ratio 1.5   # the CI gate
    python benchmarks/bench_scale.py ... --scales 1 23 --max-memory auto   # ~100k: two models only if they fit

Prints time and memory per essay against 1x; with --max-ratio it exits 1 when the largest size's peak memory
per essay exceeds that multiple of 1x's (memory must grow at most linearly).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from workspace import ROOT, isolated_project, measured

AUGMENT_RECIPE = ROOT / "configs" / "augment" / "student.yaml"


def training_set(train: Path, base: int | None, scale: int, work: Path) -> tuple[Path, int]:
    """train (or its first ``base`` essays) plus scale-1 augmented copies of each, grouped by parent_id."""
    import pandas as pd

    work.mkdir(parents=True, exist_ok=True)
    source = work / "base.csv"
    if not source.is_file():
        frame = pd.read_csv(train, dtype=str, keep_default_na=False)
        (frame.head(base) if base else frame).to_csv(source, index=False)
    out = work / f"train_{scale}x.csv"
    if not out.is_file():
        cmd = [sys.executable, "-m", "augment", "--in", str(source), "--out", str(out), "--recipe", str(AUGMENT_RECIPE)]
        subprocess.run([*cmd, "--copies", str(scale - 1), "--no-progress"], cwd=ROOT, check=True, capture_output=True)
    return out, len(pd.read_csv(out, usecols=["parent_id"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=ROOT / "data" / "train.csv")
    parser.add_argument("--test", type=Path, default=ROOT / "data" / "test_essays.csv")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 10])
    parser.add_argument("--base", type=int, help="take only the first N training essays as 1x")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-memory", help="train_fold's budget for models side by side (e.g. auto at 23x: ~100k)")
    parser.add_argument("--work", type=Path, default=ROOT / "dist" / "scale")
    parser.add_argument("--max-ratio", type=float, help="fail when peak MiB per essay at the largest size > this x 1x")
    args = parser.parse_args()
    rows = []
    work = args.work / (f"base{args.base}" if args.base else "full")  # sets of another base are never reused
    for scale in sorted(set(args.scales)):
        train, n = training_set(args.train, args.base, scale, work)
        shutil.rmtree(work / f"{scale}x", ignore_errors=True)  # a first run: no folds or caches of an earlier one
        config = isolated_project(work / f"{scale}x")
        common = ["--config", str(config), "--train", str(train), "--test", str(args.test), "--no-progress"]
        train_cmd = ["src/train_fold.py", "--fold", "all", "--model", "all", "--force", "--jobs", str(args.jobs)]
        train_cmd += ["--max-memory", args.max_memory] if args.max_memory else []
        home = config.parent
        outputs = ["--out", str(home / "submission.csv"), "--ensemble", str(home / "ensemble")]
        stages = {
            "train": measured([sys.executable, *train_cmd, *common]),
            "blend": measured([sys.executable, "src/blend.py", *common, *outputs, "--history", str(home / "h.jsonl")]),
        }
        rows.append((scale, n, stages))
        print(f"{scale}x: {n} essays  " + "  ".join(f"{k} {s:.0f} s / {m:.0f} MiB" for k, (s, m) in stages.items()),
              flush=True)  # fmt: skip
    base_scale, base_n, base_stages = rows[0]
    print("\n| size | essays | stage | wall s | peak MiB (largest process) | s per essay vs 1x | MiB per essay vs 1x |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for scale, n, stages in rows:
        for stage, (seconds, mib) in stages.items():
            base_s, base_mib = base_stages[stage]
            time_ratio = (seconds / n) / (base_s / base_n)
            mem_ratio = (mib / n) / (base_mib / base_n)
            if scale == rows[-1][0]:
                worst = max(worst, mem_ratio)
            print(f"| {scale}x | {n} | {stage} | {seconds:.0f} | {mib:.0f} | {time_ratio:.2f} | {mem_ratio:.2f} |")
    if args.max_ratio is not None and worst > args.max_ratio:
        raise SystemExit(f"peak memory per essay at {rows[-1][0]}x is {worst:.2f}x that of {base_scale}x "
                         f"(limit {args.max_ratio})")  # fmt: skip


if __name__ == "__main__":
    main()

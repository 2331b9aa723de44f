"""Wall time of the offline Kaggle notebook on a Kaggle-sized hidden test, rehearsed here (src/package.py).

Builds a test file of --n essays (the hidden test has about 9,000) drawn from the training essays with fresh
ids, then rehearses both package modes on it as Kaggle runs them (fresh venv, pip offline, a Kaggle tree):
predict (the saved ensemble scores the essays) and train (the whole CPU pipeline inside the notebook, its
test-fitted vocabularies seeing the test). Prints each mode's wall time and the notebook's step times, and the
headroom against Kaggle's 9-hour limit. Run `make run` first (predict mode packages the saved ensemble).

    python benchmarks/bench_kaggle_notebook.py --train ../shared/data/train.csv --n 9000
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from daigt.data import load_essays
from daigt.packaging import LOCAL_WHEELHOUSE, WheelOptions, build_package, rehearse

ROOT = Path(__file__).resolve().parents[1]
KAGGLE_LIMIT_S = 9 * 3600
STEP = re.compile(r"^\s+\((\d+) s\)$")


def hidden_test(train: Path, n: int, seed: int, out: Path) -> Path:
    essays = load_essays(train, "train", {}).sample(n=n, replace=True, random_state=seed)
    essays.assign(id=[f"h{i:05d}" for i in range(n)])[["id", "text"]].to_csv(out, index=False)
    return out


def step_times(output: str) -> list[tuple[str, int]]:
    """(command's script, seconds) for every step the notebook printed."""
    steps, command = [], ""
    for line in output.splitlines():
        if line.startswith("$ "):
            parts = line[2:].split()
            command = next((Path(p).name for p in parts if p.endswith(".py")), " ".join(parts[1:4]))
        elif match := STEP.match(line):
            steps.append((command, int(match[1])))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=ROOT / "data" / "train.csv")
    parser.add_argument("--n", type=int, default=9000, help="test essays (Kaggle's hidden test: about 9,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", nargs="+", default=["predict", "train"])
    args = parser.parse_args()
    wheels = WheelOptions(LOCAL_WHEELHOUSE, offline=True)
    (ROOT / "dist").mkdir(exist_ok=True)  # beside ensemble/ and artifacts/: the package hard-links their files
    with tempfile.TemporaryDirectory(dir=ROOT / "dist") as tmp:
        work = Path(tmp)
        test = hidden_test(args.train, args.n, args.seed, work / "test_essays.csv")
        rows = []
        for mode in args.modes:
            package = work / f"package-{mode}"
            if mode == "predict":
                build_package(package, mode, wheels, ROOT / "ensemble")
            else:
                build_package(package, mode, wheels, train=[args.train])
            started = time.monotonic()
            done = rehearse(package, test, work / f"rehearsal-{mode}")
            seconds = time.monotonic() - started
            if done.returncode != 0:
                sys.exit(f"{mode}: the notebook failed\n{done.stdout}\n{done.stderr}")
            rows.append((mode, seconds, step_times(done.stdout)))
    print(f"offline Kaggle notebook, {args.n} test essays, this machine ({len(os.sched_getaffinity(0))} cores)")
    for mode, seconds, steps in rows:
        detail = ", ".join(f"{name} {s} s" for name, s in steps)
        print(f"  {mode:8s} {seconds:7.0f} s  ({seconds / KAGGLE_LIMIT_S:.1%} of Kaggle's 9 h)   {detail}")


if __name__ == "__main__":
    main()

"""Build the offline Kaggle package: one folder to upload as a Kaggle dataset (format: daigt/packaging.py).

python src/package.py --out dist/kaggle                                    # predict mode: the saved ensemble
python src/package.py --out dist/kaggle-train --mode train --train data/train.csv   # train inside the notebook
python src/package.py --out dist/kaggle --python-version 3.11 --platform manylinux_2_28_x86_64   # Kaggle's image
python src/package.py --out dist/kaggle --rehearse data/test_essays.csv   # then run it here as Kaggle would
python src/package.py --out dist/kaggle --dataset me/daigt-ensemble --upload  # then upload it (kaggle CLI)

The whole route to a scored submission: docs/kaggle.md.
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse
from pathlib import Path

from daigt.blending import BlendConfig
from daigt.cli_options import parse_options
from daigt.config import BLEND_CONFIG, load_config, repo_path
from daigt.errors import DaigtError, cli_entry
from daigt.packaging import (
    LOCAL_WHEELHOUSE,
    MODES,
    WheelOptions,
    build_package,
    dataset_metadata,
    rehearse_into,
    upload,
    upload_commands,
)
from essayio import console
from essayio.outputs import check_replaceable


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="package folder to write (replaced in one rename)")
    parser.add_argument("--mode", choices=MODES, default="predict", help="score with the ensemble, or train in it")
    parser.add_argument("--ensemble", type=Path, help="predict: saved ensemble (default: 'ensemble:' in blend.yaml)")
    parser.add_argument("--artifacts", type=Path, help="predict: fold models, if moved since the blend")
    parser.add_argument("--train", type=Path, nargs="+", default=[], help="train: training file(s) to ship")
    parser.add_argument("--models", nargs="+", help="train: models to train (default: 'models:' in project.yaml)")
    parser.add_argument("--jobs", type=int, default=0, help="train: models side by side (default: the CPU count)")
    parser.add_argument(
        "--wheels-from", type=Path, help="a folder of wheels pip may take from first (default: .venv/wheelhouse)"
    )
    parser.add_argument("--offline", action="store_true", help="take wheels only from --wheels-from (no index)")
    parser.add_argument("--python-version", help="the notebook's Python, e.g. 3.11 (default: this one)")
    parser.add_argument("--platform", help="the notebook's platform tag, e.g. manylinux_2_28_x86_64")
    parser.add_argument(
        "--rehearse",
        type=Path,
        metavar="TEST_CSV",
        help="then run the notebook on these essays in a fresh venv, "
        "pip offline, in a Kaggle tree under --rehearsal (this machine's platform only)",
    )
    parser.add_argument("--rehearsal", type=Path, default=Path("dist/rehearsal"), help="its folder (replaced)")
    parser.add_argument(
        "--dataset",
        metavar="OWNER/SLUG",
        help="the Kaggle dataset to upload to: writes dataset-metadata.json (a rebuild keeps the one it finds)",
    )
    parser.add_argument(
        "--upload", action="store_true", help="then upload with the kaggle CLI (or print the exact commands)"
    )
    return parse_options(parser, argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.rehearse is not None and not args.rehearse.is_file():
        raise DaigtError(f"--rehearse {args.rehearse}: no such test file")
    if args.rehearse is not None:
        check_replaceable(args.rehearsal, "--rehearsal", [args.rehearse])
    ensemble = args.ensemble
    if args.mode == "predict" and ensemble is None:
        ensemble = repo_path(load_config(BlendConfig, BLEND_CONFIG).ensemble)
    found = args.wheels_from or (LOCAL_WHEELHOUSE if LOCAL_WHEELHOUSE.is_dir() else None)
    wheels = WheelOptions(found, args.offline, args.python_version, args.platform)
    if args.upload:  # before the build: a package that cannot be uploaded is said at once, not after minutes
        upload_commands(args.out, dataset_metadata(args.out, args.dataset), "")
    manifest = build_package(
        args.out, args.mode, wheels, ensemble, args.artifacts, args.train, args.models, args.jobs, args.dataset
    )
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    console.say(
        f"package ({args.mode}): {args.out}  {len(manifest['files'])} files, {size / 2**20:.0f} MiB, "
        f"{len(manifest['requirements'])} wheels for Python {manifest['python']}",
        aside=True,
    )
    if args.rehearse is not None:
        submission, seconds = rehearse_into(args.out, args.rehearse, args.rehearsal)
        console.say(f"rehearsal: {submission} in {seconds:.0f} s (fresh venv, pip offline)", aside=True)
    if args.upload:
        console.say("\n".join(upload(args.out)[1]))


if __name__ == "__main__":
    main()

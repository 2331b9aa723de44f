"""The offline Kaggle notebook: install the package's wheels with --no-index, then write submission.csv.

src/package.py copies this file into the package as ``notebook.py`` and as the code cell of ``notebook.ipynb``,
with SETTINGS filled in. Standard library only: it runs before anything is installed. Modes:

- predict: score the competition's test essays with the saved ensemble (the package's ensemble/ + artifacts/).
- train:   run the whole CPU pipeline inside the notebook (train every model on the package's data/, blend), so
           vocabularies fitted on the test essays see the hidden test set.

DAIGT_KAGGLE_ROOT replaces /kaggle (the tests run the notebook in a temporary Kaggle tree).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SETTINGS: dict = {"mode": "predict", "train": [], "jobs": 0}  # written by src/package.py

MANIFEST = "daigt-package.json"
COMPETITION = "llm-detect-ai-generated-text"


class NotebookError(Exception):
    """Something to fix in the notebook's inputs; printed as one line."""


def kaggle_root() -> Path:
    return Path(os.environ.get("DAIGT_KAGGLE_ROOT", "/kaggle"))


def find_package(inputs: Path) -> Path:
    """The attached dataset holding the package (found by its manifest, whatever the dataset is called)."""
    found = sorted(inputs.glob(f"*/{MANIFEST}")) + sorted(inputs.glob(f"*/*/{MANIFEST}"))
    if not found:
        raise NotebookError(f"no DAIGT package under {inputs}: add the dataset built by src/package.py to the notebook")
    return found[0].parent


def sha256(path: Path) -> str:
    """SHA-256 of one file, read in blocks (fold models run to hundreds of MiB); artifacts.py uses it too."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(package: Path) -> dict:
    """Every file the manifest lists, with its SHA-256: a partial upload stops here, naming the file."""
    manifest = json.loads((package / MANIFEST).read_text())
    for name, expected in manifest["files"].items():
        path = package / name
        if not path.is_file():
            raise NotebookError(f"{path}: missing from the package (upload the whole folder src/package.py wrote)")
        if sha256(path) != expected:
            raise NotebookError(f"{path}: damaged (SHA-256 differs from {MANIFEST}); upload the package again")
    return manifest


def run(command: list, **kwargs) -> None:
    printable = " ".join(str(part) for part in command)
    print(f"$ {printable}", flush=True)
    started = time.monotonic()
    if subprocess.run([str(part) for part in command], **kwargs).returncode != 0:
        raise NotebookError(f"this step failed (its message is above): {printable}")
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)


def install(package: Path) -> None:
    """The pinned wheels, from the package only: the notebook has no internet."""
    wheels, lock = package / "wheels", package / "requirements.lock"
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", wheels, "-r", lock])


def project_env(project: Path) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(project / "src"), str(project)])}


def predict(package: Path, test: Path, working: Path) -> None:
    project = package / "project"
    command = [sys.executable, "-B", project / "src" / "predict.py", "--input", test, "--no-progress"]
    command += ["--ensemble", package / "ensemble", "--artifacts", package / "artifacts"]
    command += ["--output", working / "predictions.csv", "--submission", working / "submission.csv"]
    run(command, env=project_env(project))


def train(package: Path, test: Path, working: Path) -> None:
    """The whole CPU pipeline in a writable copy of the project (the package itself is read-only on Kaggle)."""
    project = working / "daigt"
    if not project.exists():
        shutil.copytree(package / "project", project)
    data = [package / "data" / name for name in SETTINGS["train"]]
    jobs = str(SETTINGS["jobs"] or os.cpu_count() or 1)
    env = project_env(project)
    steps = [
        ["train_fold.py", "--fold", "all", "--model", "all", "--jobs", jobs, "--train", *data, "--test", test],
        # the ensemble where the project's predict and serve look for it (an --out alone would put it beside)
        [
            "blend.py",
            "--train",
            *data,
            "--test",
            test,
            "--out",
            working / "submission.csv",
            "--ensemble",
            project / "ensemble",
        ],
    ]
    for script, *args in steps:
        run([sys.executable, project / "src" / script, *args, "--no-progress"], cwd=project, env=env)


def check_python(manifest: dict) -> None:
    """The wheels are built for one Python (major.minor): on another, pip would fail deep in its output."""
    built = ".".join(str(manifest.get("python", "")).split(".")[:2])
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if built and built != running:
        raise NotebookError(
            f"the package's wheels are for Python {built}, this notebook runs {running}: rebuild it with "
            f"python src/package.py --out dist/kaggle --python-version {running} --platform manylinux_2_28_x86_64"
        )


def main() -> None:
    root = kaggle_root()
    test = root / "input" / COMPETITION / "test_essays.csv"
    working = root / "working"
    started = time.monotonic()
    package = find_package(root / "input")
    manifest = verify(package)
    print(f"DAIGT package {package} (mode {SETTINGS['mode']}, built {manifest['built']} from {manifest['commit']})")
    check_python(manifest)
    if not test.is_file():
        raise NotebookError(f"{test}: not found; add the competition's data to the notebook")
    install(package)
    working.mkdir(parents=True, exist_ok=True)
    (predict if SETTINGS["mode"] == "predict" else train)(package, test, working)
    print(f"wrote {working / 'submission.csv'} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except NotebookError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)

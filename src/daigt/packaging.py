"""The offline Kaggle package: one folder to upload as a Kaggle dataset. Its one owner.

``<out>/`` (built in a staging folder, published in one rename):

- ``daigt-package.json``  manifest: mode, build time, git commit, Python/platform, every other file's SHA-256
- ``requirements.lock``   name==version of every wheel in ``wheels/`` (what the notebook installs, --no-index)
- ``wheels/``             the pinned requirements and their dependencies (requirements-kaggle.txt + families')
- ``project/``            the source: src/, augment/, essayio/, configs/ (train mode: the models to train)
- ``ensemble/``, ``artifacts/<model>/fold<k>/``   predict mode: the saved ensemble and the fold models it uses
- ``data/``               train mode: the training files, trained on inside the notebook
- ``notebook.py``, ``notebook.ipynb``             daigt/kaggle_notebook.py with its SETTINGS filled in
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from daigt import kaggle_notebook
from daigt.artifacts import ENSEMBLE_FILE, ModelArtifacts, file_digests, link_or_copy_tree, read_ensemble
from daigt.config import PROJECT_CONFIG, REPO_ROOT, load_yaml
from daigt.errors import DaigtError
from daigt.families import get_family
from daigt.inference import artifacts_root
from daigt.model_configs import load_model_config
from daigt.submission import sample_beside
from essayio import atomic, outputs

MANIFEST = kaggle_notebook.MANIFEST
LOCK, WHEELS = "requirements.lock", "wheels"
KAGGLE_REQUIREMENTS = REPO_ROOT / "requirements-kaggle.txt"
PINS = REPO_ROOT / "requirements.txt"
LOCAL_WHEELHOUSE = REPO_ROOT / ".venv" / "wheelhouse"  # scripts/setup.sh downloads the CPU wheels here
SOURCE_DIRS = ("src", "augment", "essayio", "configs")
SOURCE_SUFFIXES = {".py", ".yaml", ".json", ".txt", ".toml"}
SETTINGS_LINE = re.compile(r"^SETTINGS: dict = .*$", re.MULTILINE)
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")
MODES = ("predict", "train")
REHEARSAL_SUBMISSION = Path("kaggle", "working", "submission.csv")  # where a rehearsal's notebook writes, in it
TRAIN_ONLY = "(mode: train)"  # requirements-kaggle.txt: a wheel only the train-mode notebook needs


@dataclass
class WheelOptions:
    """Where wheels come from: the index (default), or only ``find_links`` (offline); and for which Python."""

    find_links: Path | None = None
    offline: bool = False
    python_version: str | None = None  # e.g. 3.11 for Kaggle's image; None: this interpreter
    platform: str | None = None  # e.g. manylinux_2_28_x86_64; None: this machine


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def requirement_names(families: Sequence[str], mode: str = "train") -> list[str]:
    """requirements-kaggle.txt (less its train-only lines in predict mode) plus what the given families
    declare, in order, once each."""
    names = []
    for line in KAGGLE_REQUIREMENTS.read_text().splitlines():
        name, _, comment = line.partition("#")
        if name.strip() and (mode == "train" or TRAIN_ONLY not in comment):
            names.append(name.strip())
    for family in families:
        names += get_family(family).requirements
    return list(dict.fromkeys(names))


def download_wheels(names: Sequence[str], dest: Path, options: WheelOptions) -> list[str]:
    """``pip download`` the names (pinned by requirements.txt as constraints) into ``dest``; the lock lines."""
    dest.mkdir(parents=True, exist_ok=True)
    requirements = dest.parent / "requirements-kaggle.in"
    requirements.write_text("\n".join(names) + "\n")
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest)]
    command += ["-r", str(requirements), "-c", str(PINS), "--only-binary=:all:"]
    if options.find_links:
        command += ["--find-links", str(options.find_links)]
    if options.offline:
        command += ["--no-index"]
    if options.python_version:
        command += ["--python-version", options.python_version]
    if options.platform:
        command += ["--platform", options.platform]
    done = subprocess.run(command, capture_output=True, text=True)
    requirements.unlink()
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        where = f" from {options.find_links} only" if options.offline else ""
        raise DaigtError(f"pip download of the package's wheels{where} failed: {last}")
    return lock_lines(dest)


def lock_lines(wheels: Path) -> list[str]:
    lines = []
    for wheel in sorted(wheels.glob("*.whl")):
        match = WHEEL_NAME.match(wheel.name)
        if match:
            lines.append(f"{match['name'].replace('_', '-').lower()}=={match['version']}")
    return sorted(set(lines))


def copy_source(dest: Path) -> None:
    """The project's code and configs (no tests, data, caches or artifacts)."""
    for top in SOURCE_DIRS:
        for path in sorted((REPO_ROOT / top).rglob("*")):
            rel = path.relative_to(REPO_ROOT)
            if path.is_file() and path.suffix in SOURCE_SUFFIXES and "__pycache__" not in rel.parts:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest / rel)
    shutil.copy2(REPO_ROOT / "pyproject.toml", dest / "pyproject.toml")


def add_ensemble(out: Path, ensemble: Path, artifacts: Path | None) -> list[str]:
    """The ensemble and the fold models it uses (checked as predict checks them); the families it needs."""
    saved = read_ensemble(ensemble)
    root = artifacts or artifacts_root(ensemble, saved.spec)
    link_or_copy_tree(ensemble, out / "ensemble")
    # the package's copy names the fold models beside it, never a folder of this machine
    spec = {k: v for k, v in saved.spec.items() if k != "artifacts"} | {"artifacts_relative": "artifacts"}
    (out / "ensemble" / ENSEMBLE_FILE).unlink()  # a hard link to the original: replace it, never write through
    atomic.write_json(out / "ensemble" / ENSEMBLE_FILE, spec)
    families = []
    for name, entry in saved.spec["models"].items():
        families.append(entry["family"])
        for k, run_key in enumerate(entry["run_keys"]):
            fold = ModelArtifacts(root, name).fold(k)
            if not fold.exists():
                raise DaigtError(f"{fold.path}: fold model of '{name}' is missing; pass --artifacts or rerun blend")
            metrics = fold.verified()
            if metrics.get("run_key") != run_key:
                raise DaigtError(f"{fold.path}: retrained since the blend that saved {ensemble}; rerun blend")
            fold.export(out / "artifacts" / name / fold.path.name, compact=True, verified=metrics)
    return families


def add_training(out: Path, train: Sequence[Path], models: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The training files and, when ``models`` is given, the project config's model list set to them."""
    if not train:
        raise DaigtError("--mode train needs the training file(s): --train data/train.csv [more.csv ...]")
    names = []
    for path in train:
        if not path.is_file():
            raise DaigtError(f"{path}: no such training file")
        if path.name in names:
            raise DaigtError(f"two training files are called {path.name}: rename one (the package keeps names)")
        names.append(path.name)
        (out / "data").mkdir(exist_ok=True)
        shutil.copy2(path, out / "data" / path.name)
    project_file = out / "project" / PROJECT_CONFIG.relative_to(REPO_ROOT)
    config = load_yaml(project_file)
    if models:
        config["models"] = list(models)
        project_file.write_text(yaml.safe_dump(config, sort_keys=False))
    families = []
    for model in config["models"]:
        if Path(model).suffix in {".yaml", ".yml"}:
            raise DaigtError(f"--models {model}: name a config in configs/models/ (the package ships that folder)")
        families.append(load_model_config(model).config.family)  # validated here, not in the notebook
    return names, families


def notebook_source(settings: dict[str, Any]) -> str:
    template = Path(kaggle_notebook.__file__).read_text()
    filled = f"SETTINGS: dict = {json.dumps(settings)}  # written by src/package.py"
    return SETTINGS_LINE.sub(lambda _: filled, template, count=1)


def notebook_json(source: str, mode: str) -> dict[str, Any]:
    """A minimal nbformat-4 notebook: a title cell and the script as one code cell."""
    title = (
        f"# DAIGT ensemble, offline ({mode})\n\nAttach this dataset and the competition's data; internet off. "
        "Run all: installs the package's wheels with `--no-index`, writes `/kaggle/working/submission.csv`."
    )
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "markdown", "id": "title", "metadata": {}, "source": title.splitlines(keepends=True)},
            {
                "cell_type": "code",
                "id": "run",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source.splitlines(keepends=True),
            },
        ],
    }


def check_out(out: Path) -> None:
    """The package folder may not be one the package copies: it would nest itself. (What else it may not be,
    the output policy says when the folder is replaced: essayio.outputs.)"""
    target = outputs.absolute(out).resolve()
    for top in SOURCE_DIRS:
        if (REPO_ROOT / top).resolve() in (target, *target.parents):
            raise DaigtError(f"--out {out} is inside {top}/, which the package copies; choose e.g. dist/kaggle")


def build_package(
    out: Path,
    mode: str,
    wheels: WheelOptions,
    ensemble: Path | None = None,
    artifacts: Path | None = None,
    train: Sequence[Path] = (),
    models: Sequence[str] | None = None,
    jobs: int = 0,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Build the package in a staging folder and publish it in one rename; returns the manifest. The Kaggle
    dataset metadata is written for ``dataset``, or kept from the folder it replaces. (Nine parameters: one per
    option of src/package.py, which the tests call this with directly.)"""
    if mode not in MODES:
        raise DaigtError(f"--mode {mode}: expected one of {', '.join(MODES)}")
    check_out(out)
    metadata = dataset_metadata(out, dataset)
    with outputs.replaced_folder(out, "--out", [ensemble, artifacts, *train]) as tmp:
        if metadata is not None:
            atomic.write_json(tmp / DATASET_METADATA, metadata)
        copy_source(tmp / "project")
        settings: dict[str, Any] = {"mode": mode, "train": [], "jobs": jobs}
        if mode == "predict":
            if ensemble is None:
                raise DaigtError("--mode predict needs the saved ensemble (--ensemble; blend writes ensemble/)")
            families = add_ensemble(tmp, ensemble, artifacts)
        else:
            settings["train"], families = add_training(tmp, train, models)
        lock = download_wheels(requirement_names(families, mode), tmp / WHEELS, wheels)
        (tmp / LOCK).write_text("\n".join(lock) + "\n")
        source = notebook_source(settings)
        (tmp / "notebook.py").write_text(source)
        atomic.write_json(tmp / "notebook.ipynb", notebook_json(source, mode))
        manifest = {
            "format": 1,
            "mode": mode,
            "built": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(),
            "python": wheels.python_version or platform.python_version(),
            "platform": wheels.platform or "this machine's",
            "requirements": lock,
            "files": file_digests(tmp, skip=None),
        }
        atomic.write_json(tmp / MANIFEST, manifest)
    return manifest


DATASET_METADATA = "dataset-metadata.json"  # what `kaggle datasets create/version -p <package>` reads
DATASET_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9][a-z0-9-]{4,48}$")


def dataset_metadata(out: Path, dataset: str | None) -> dict[str, Any] | None:
    """The Kaggle dataset's metadata for the package: written for ``dataset`` (owner/slug), else the one a
    previous build of ``out`` holds (a rebuild keeps it), else none."""
    if dataset is not None:
        if not DATASET_SLUG.match(dataset):
            raise DaigtError(f"--dataset {dataset}: expected your-kaggle-username/dataset-slug (5-49 of a-z 0-9 -)")
        return {"title": dataset.split("/")[1], "id": dataset, "licenses": [{"name": "CC0-1.0"}]}
    previous = out / DATASET_METADATA
    if not previous.is_file():
        return None
    try:
        kept = json.loads(previous.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DaigtError(f"{previous}: not valid JSON; fix it or pass --dataset owner/slug to write it anew") from None
    if not isinstance(kept, dict) or not isinstance(kept.get("id"), str):
        raise DaigtError(f"{previous}: has no 'id'; pass --dataset owner/slug to write it anew")
    return kept


def upload_commands(out: Path, metadata: dict[str, Any] | None, message: str) -> list[list[str]]:
    """The kaggle CLI commands that publish ``out``: a new version of the dataset, or (first time) its creation."""
    if metadata is None:
        raise DaigtError(f"{out}: no {DATASET_METADATA}; pass --dataset your-kaggle-username/dataset-slug")
    version = ["kaggle", "datasets", "version", "-p", str(out), "-m", message, "--dir-mode", "zip"]
    return [version, ["kaggle", "datasets", "create", "-p", str(out), "--dir-mode", "zip"]]


KAGGLE_CLI_SETUP = (
    "the kaggle CLI is not installed here. To upload: pip install kaggle; at kaggle.com > Settings > API > "
    "Create New Token, save kaggle.json to ~/.kaggle/kaggle.json (chmod 600); then run"
)


def upload(out: Path) -> tuple[bool, list[str]]:
    """Publish the package with the kaggle CLI when it is installed (a new version, else a new dataset);
    otherwise the exact commands to run. Returns (uploaded, lines to print)."""
    commands = upload_commands(out, dataset_metadata(out, None), f"DAIGT package {git_commit()}")
    shown = [" ".join(c) for c in commands]
    if shutil.which("kaggle") is None:
        return False, [KAGGLE_CLI_SETUP, f"  {shown[0]}    # a new version of the dataset", f"  {shown[1]}    # or, "
                       "the first time, to create it"]  # fmt: skip
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            return True, [f"uploaded: {' '.join(command)}", done.stdout.strip()]
    last = (done.stderr or done.stdout).strip().splitlines()
    raise DaigtError(f"kaggle upload failed: {last[-1] if last else 'no output'} (commands: {' ; '.join(shown)})")


def offline_env(kaggle: Path) -> dict[str, str]:
    """The environment of a rehearsal: pip with no index (and no config that could name one), the notebook
    pointed at the temporary Kaggle tree, nothing of this project's venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, "DAIGT_KAGGLE_ROOT": str(kaggle), "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}


def kaggle_tree(root: Path, package: Path, test: Path) -> Path:
    """``root/input/<competition>/`` with the test essays (and the sample submission beside them, if any),
    ``root/input/daigt-ensemble/`` the package, both read-only as on Kaggle; ``root/working/`` empty."""
    competition = root / "input" / kaggle_notebook.COMPETITION
    competition.mkdir(parents=True)
    shutil.copy(test, competition / "test_essays.csv")
    sample = sample_beside(test)
    if sample is not None:
        shutil.copy(sample, competition / sample.name)
    link_or_copy_tree(package, root / "input" / "daigt-ensemble")
    (root / "working").mkdir()
    for path in (root / "input").rglob("*"):
        if path.is_dir():
            path.chmod(0o555)
    return root


def rehearse_into(package: Path, test: Path, rehearsal: Path) -> tuple[Path, float]:
    """``rehearse`` in the folder ``rehearsal`` (replaced only as the output policy allows); the submission it
    wrote and the seconds it took. A failing notebook is one line (its own output is above it)."""
    started = time.monotonic()
    with outputs.replaced_folder(rehearsal, "--rehearsal", [test]) as folder:
        done = rehearse(package, test, folder, capture=False)
    if done.returncode != 0:
        raise DaigtError(f"the rehearsal's notebook failed (exit {done.returncode}); its output is above")
    return rehearsal / REHEARSAL_SUBMISSION, time.monotonic() - started


def rehearse(
    package: Path, test: Path, workdir: Path, python: Path | None = None, capture: bool = True
) -> subprocess.CompletedProcess:
    """Run the package's notebook as Kaggle would, here: in a fresh venv (or ``python``) with pip offline, in a
    Kaggle tree under ``workdir`` (its submission lands in ``workdir/kaggle/working/``). Writing into the input
    tree is an error."""
    if python is None:
        venv = workdir / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
    kaggle = kaggle_tree(workdir.resolve() / REHEARSAL_SUBMISSION.parts[0], package, test)
    inputs = sorted((kaggle / "input").rglob("*"))
    script = kaggle / "input" / "daigt-ensemble" / "notebook.py"
    try:
        done = subprocess.run([str(python), str(script)], env=offline_env(kaggle), capture_output=capture, text=True)
        written = sorted(set((kaggle / "input").rglob("*")) - set(inputs))
    finally:
        for path in (kaggle / "input").rglob("*"):  # writable again, so the folder can be removed
            if path.is_dir():
                path.chmod(0o755)
    if written:
        raise DaigtError(f"the notebook wrote into its read-only input: {written[0]}")
    return done

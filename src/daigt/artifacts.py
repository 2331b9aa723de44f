"""The on-disk formats later steps trust: a model's fold folders, and the saved ensemble. Their one owner.

``artifacts/<model>/fold<k>/`` (written by the fold trainer in one rename):

- ``oof.csv``      id, fold, label, pred: the held-out fold's predictions
- ``test.csv``     id, pred: the test essays' predictions
- ``holdout.csv``  id, pred: the locked holdout's predictions (empty without a holdout)
- ``oof_attacked.csv`` id, pred: the held-out fold's essays after the stacker's attack recipe (when set)
- ``metrics.json`` AUC, timings, memory, the ``run_key`` (config, seed, data, folds) the fold was trained under,
                   the ``data_key`` of its training rows, and ``files``: every other file's SHA-256, checked on read
- ``config.yaml``  the resolved model config
- ``model/``       whatever the family's ``save`` wrote; ``load_model`` rebuilds it

``artifacts/<model>/.kept/<run key>/fold<k>/``: a fold folder a retrain under another run key replaced; training
under that key again restores it instead of retraining (``python src/runs.py prune`` deletes them).

``artifacts/<model>/generalization/<split>/`` (written by src/evaluate.py): ``predictions.csv`` (id, role
train|eval, fold, pred: the split's inner-fold OOF and its held-out rows) and ``meta.json`` (its run key).

``ensemble/`` (written by blend): ``ensemble.json`` (spec), ``oof_references.npz`` (each model's OOF
predictions), ``stacker/fold<k>.txt`` (LightGBM fold boosters), ``shift.npz`` (the shift scorer's arrays:
vocabulary, idf, reference essays, out-of-fold calibration; shift.py).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import yaml

from daigt.config import DeobfuscateSpec, frame_fingerprint
from daigt.errors import DaigtError
from daigt.families import ModelFamily, get_family
from daigt.kaggle_notebook import sha256  # the one block-wise file digest (stdlib only: the notebook needs it too)
from daigt.schema import parse
from essayio import atomic

OOF_FILE, METRICS_FILE = "oof.csv", "metrics.json"
ATTACKED_OOF_FILE = "oof_attacked.csv"  # id, pred: the held-out fold again, attacked (project stacker_attack)
SCORED_FILES = {"test": "test.csv", "holdout": "holdout.csv"}  # sets every fold model scores, by name
CONFIG_FILE, MODEL_DIR = "config.yaml", "model"
ENSEMBLE_FILE, REFERENCES_FILE, STACKER_DIR = "ensemble.json", "oof_references.npz", "stacker"
SHIFT_FILE = "shift.npz"
ATTRIBUTION_FILE = "attribution.joblib"  # the second task (attribution.py): which generator family
WORK_PREFIX, ATTACK_DIR, GENERALIZATION_DIR = ".work-fold", "attack", "generalization"
KEPT_DIR = ".kept"  # <model>/.kept/<run key>/fold<k>/: folds of earlier configs, restored when one comes back
SPLIT_PREDICTIONS, SPLIT_META = "predictions.csv", "meta.json"


def link_or_copy_tree(src: Path, dest: Path) -> None:
    """Hard links where the file system allows (fold models are large), else copies."""

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dest, copy_function=link)


def file_digests(folder: Path, skip: str | None = METRICS_FILE) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` but those named ``skip`` (a fold's metrics.json, which holds
    the others' digests), by path relative to it."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != skip)
    return {path.relative_to(folder).as_posix(): sha256(path) for path in files}


def data_key(train: pd.DataFrame) -> str:
    """What a fold's training rows were: ids, texts, labels and folds (blend refuses folds trained on others)."""
    return frame_fingerprint(train, ["id", "text", "label", "fold"])


@dataclass(frozen=True)
class FoldFolder:
    """One trained fold of one model."""

    path: Path
    model: str
    fold: int

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    def exists(self) -> bool:
        return (self.path / METRICS_FILE).is_file()

    def metrics(self) -> dict[str, Any]:
        try:
            metrics = json.loads((self.path / METRICS_FILE).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DaigtError(f"{self.path / METRICS_FILE}: unreadable ({type(err).__name__}); {self.retrain}") from None
        if not isinstance(metrics, dict):
            raise DaigtError(f"{self.path / METRICS_FILE}: not a metrics object; {self.retrain}")
        return metrics

    @property
    def retrain(self) -> str:
        return f"retrain it with python src/train_fold.py --fold {self.fold} --model {self.model}"

    def verified(self) -> dict[str, Any]:
        """The fold's metrics, after checking every file it recorded is there with the same content."""
        if not self.exists():
            raise DaigtError(f"{self.path}: not trained; {self.retrain}")
        metrics = self.metrics()
        recorded = metrics.get("files")
        if not isinstance(recorded, dict):
            raise DaigtError(f"{self.path}: written by an older version (no file checksums); {self.retrain}")
        found = file_digests(self.path)
        damaged = sorted(name for name, digest in recorded.items() if found.get(name) != digest)
        if damaged:
            state = "missing" if damaged[0] not in found else "changed since it was written"
            raise DaigtError(f"{self.path / damaged[0]}: {state}; {self.retrain}")
        return metrics

    def config(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / CONFIG_FILE).read_text())

    def deobfuscation(self) -> DeobfuscateSpec | None:
        """The normalisation the model's texts went through in training (predict must apply the same)."""
        raw = self.config().get("deobfuscate")
        return None if raw is None else parse(DeobfuscateSpec, raw, str(self.path / CONFIG_FILE), "deobfuscate")

    def oof(self) -> pd.DataFrame:
        return pd.read_csv(self.path / OOF_FILE, dtype={"id": str})

    def oof_attacked(self) -> pd.DataFrame | None:
        path = self.path / ATTACKED_OOF_FILE
        return pd.read_csv(path, dtype={"id": str}) if path.is_file() else None

    def scored(self, name: str) -> pd.DataFrame:
        """id, pred of a scored set ("test" or "holdout")."""
        return pd.read_csv(self.path / SCORED_FILES[name], dtype={"id": str})

    def kept(self, run_key: str) -> FoldFolder:
        """Where this fold, trained under ``run_key``, is kept once a retrain under another key replaced it."""
        return FoldFolder(self.path.parent / KEPT_DIR / run_key / self.path.name, self.model, self.fold)

    def park(self, new_run_key: str) -> None:
        """Move the current folder aside to ``.kept/<its run key>/`` unless it was trained under ``new_run_key``
        (or is unreadable: nothing worth keeping)."""
        if not self.exists():
            return
        try:
            old_key = self.metrics().get("run_key")
        except DaigtError:
            return
        if not isinstance(old_key, str) or old_key == new_run_key:
            return
        target = self.kept(old_key).path
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)

    def restore_kept(self, run_key: str) -> bool:
        """Bring back this fold as trained under ``run_key`` when it was kept and is intact; True if it was."""
        kept = self.kept(run_key)
        try:
            if not kept.exists() or kept.verified().get("run_key") != run_key:
                return False
        except DaigtError:
            return False
        self.park(run_key)
        if self.path.exists():  # an unreadable current folder: nothing worth keeping
            shutil.rmtree(self.path)
        os.replace(kept.path, self.path)
        return True

    def export(self, dest: Path, compact: bool = False, verified: dict[str, Any] | None = None) -> None:
        """A verified copy of this fold at ``dest`` (``verified``: as in ``load_model``). ``compact``: the model
        re-saved in its family's compact form where it has one (lossless; the copy's checksums recorded anew),
        what the Kaggle package ships."""
        metrics = verified or self.verified()
        family = get_family(metrics["family"])
        if not (compact and family.has_compact_form):
            link_or_copy_tree(self.path, dest)
            return
        model = family.load(self.model_dir)
        shutil.copytree(self.path, dest, ignore=lambda folder, _: [MODEL_DIR] if Path(folder) == self.path else [])
        (dest / MODEL_DIR).mkdir()
        model.save_compact(dest / MODEL_DIR)
        atomic.write_json(dest / METRICS_FILE, {**metrics, "files": file_digests(dest)})

    def load_model(self, verified: dict[str, Any] | None = None) -> ModelFamily:
        """The fold's model; ``verified``: the metrics a caller already got from ``verified()`` (files hashed once)."""
        return get_family((verified or self.verified())["family"]).load(self.model_dir)

    def write(
        self,
        oof: pd.DataFrame,
        scored: dict[str, pd.DataFrame],
        config: dict[str, Any],
        metrics: dict[str, Any],
        save_model: Callable[[Path], None],
        oof_attacked: pd.DataFrame | None = None,
    ) -> None:
        """Everything at once: the folder appears in one rename when all of it is written. A fold trained under
        another run key is kept (``.kept/<its key>/``), not deleted."""
        self.park(metrics["run_key"])
        with atomic.atomic_dir(self.path) as tmp:
            oof.to_csv(tmp / OOF_FILE, index=False)
            if oof_attacked is not None:
                oof_attacked.to_csv(tmp / ATTACKED_OOF_FILE, index=False)
            for name, frame in scored.items():
                frame.to_csv(tmp / SCORED_FILES[name], index=False)
            atomic.write_yaml(tmp / CONFIG_FILE, config)
            (tmp / MODEL_DIR).mkdir()
            save_model(tmp / MODEL_DIR)
            atomic.write_json(tmp / METRICS_FILE, {**metrics, "files": file_digests(tmp)})


@dataclass(frozen=True)
class SplitFolder:
    """One model's predictions for one generalization split (inner-fold OOF on its train rows, its eval rows)."""

    path: Path

    def run_key(self) -> str | None:
        meta = self.path / SPLIT_META
        return json.loads(meta.read_text()).get("run_key") if meta.is_file() else None

    def predictions(self) -> pd.DataFrame:
        return pd.read_csv(self.path / SPLIT_PREDICTIONS, dtype={"id": str, "role": str})

    def write(self, predictions: pd.DataFrame, meta: dict[str, Any]) -> None:
        with atomic.atomic_dir(self.path) as tmp:
            predictions.to_csv(tmp / SPLIT_PREDICTIONS, index=False)
            atomic.write_json(tmp / SPLIT_META, meta)


@dataclass(frozen=True)
class ModelArtifacts:
    """Every fold of one model under the artifacts root."""

    root: Path
    name: str

    @property
    def path(self) -> Path:
        return self.root / self.name

    def fold(self, k: int) -> FoldFolder:
        return FoldFolder(self.path / f"fold{k}", self.name, k)

    def workdir(self, k: int) -> Path:
        """Checkpoints of an unfinished fold (survive a crash; the trainer drops them when the fold is done)."""
        return self.path / f"{WORK_PREFIX}{k}"

    @property
    def attack_dir(self) -> Path:
        return self.path / ATTACK_DIR

    def split(self, key: str) -> SplitFolder:
        return SplitFolder(self.path / GENERALIZATION_DIR / key)

    def peak_memory_per_essay(self) -> float | None:
        """MiB of peak resident memory per essay of the run (train, held-out, holdout and test essays) in this
        model's last recorded folds; None when there are none. An estimate for scheduling, not a guarantee."""
        ratios = []
        for folder in sorted(self.path.glob("fold*")):
            try:
                m = json.loads((folder / METRICS_FILE).read_text())
                essays = sum(int(m[k]) for k in ("n_train", "n_valid", "n_holdout", "n_test"))
                ratios.append(float(m["peak_rss_mb"]) / essays)
            except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
                continue  # a fold without usable figures tells nothing; the others may
        return max(ratios, default=None)

    def missing_folds(self, n_folds: int) -> list[int]:
        return [k for k in range(n_folds) if not self.fold(k).exists()]

    def prune_kept(self) -> int:
        """Delete every kept fold of earlier configs; the bytes freed."""
        kept = self.path / KEPT_DIR
        if not kept.is_dir():
            return 0
        size = sum(p.stat().st_size for p in kept.rglob("*") if p.is_file())
        shutil.rmtree(kept)
        return size


def model_names(root: Path) -> list[str]:
    """Models with a folder under the artifacts root (hidden folders are work in progress)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass
class SavedEnsemble:
    """What blend froze for predict/serve."""

    spec: dict[str, Any]
    references: dict[str, np.ndarray]
    booster_files: list[Path]
    shift: dict[str, np.ndarray] | None = None  # None: saved before the shift score existed
    attribution: Any = None  # attribution.Attributor; None: saved without the second task


def write_ensemble(
    directory: Path,
    spec: dict[str, Any],
    references: dict[str, np.ndarray],
    boosters: list[Any] | None,
    shift: dict[str, np.ndarray] | None = None,
    attribution: Any = None,
) -> None:
    """Write ``directory`` in one atomic rename (a half-saved ensemble never exists). The attribution model's
    digest goes into the spec, so a damaged or swapped file is refused at load."""
    with atomic.atomic_dir(directory) as tmp:
        if attribution is not None:
            joblib.dump(attribution, tmp / ATTRIBUTION_FILE, compress=3)
            spec = {**spec, "attribution_sha256": sha256(tmp / ATTRIBUTION_FILE)}
        atomic.write_json(tmp / ENSEMBLE_FILE, spec)
        np.savez(tmp / REFERENCES_FILE, **references)
        if shift is not None:
            np.savez(tmp / SHIFT_FILE, **shift)
        if boosters:
            (tmp / STACKER_DIR).mkdir()
            for k, booster in enumerate(boosters):
                booster.save_model(str(tmp / STACKER_DIR / f"fold{k}.txt"))


def read_ensemble(directory: Path) -> SavedEnsemble:
    spec_path = directory / ENSEMBLE_FILE
    if not spec_path.is_file():
        raise DaigtError(
            f"{spec_path}: no saved ensemble; `make detector` writes ensemble/ (the default of predict and serve), "
            "`make run` the Kaggle route's ensemble-kaggle/ (or run `python src/blend.py`)"
        )
    rerun = "rerun `python src/blend.py` to write it again"
    try:
        spec = json.loads(spec_path.read_text())
        with np.load(directory / REFERENCES_FILE) as refs:
            references = {name: refs[name] for name in spec["models"]}
    except json.JSONDecodeError as err:
        raise DaigtError(f"{spec_path}: damaged ({err.msg}, line {err.lineno}); {rerun}") from None
    except (OSError, ValueError, KeyError) as err:
        raise DaigtError(f"{directory / REFERENCES_FILE}: missing or damaged ({err}); {rerun}") from None
    boosters = sorted((directory / STACKER_DIR).glob("fold*.txt"), key=lambda p: int(p.stem[4:]))
    shift = None
    if (directory / SHIFT_FILE).is_file():
        try:
            with np.load(directory / SHIFT_FILE) as arrays:
                shift = {name: arrays[name] for name in arrays.files}
        except (OSError, ValueError) as err:
            raise DaigtError(f"{directory / SHIFT_FILE}: damaged ({err}); {rerun}") from None
    return SavedEnsemble(spec, references, boosters, shift, _read_attribution(directory, spec, rerun))


def _read_attribution(directory: Path, spec: dict[str, Any], rerun: str) -> Any:
    """The attribution model the spec names, after checking it is the file blend wrote."""
    expected = spec.get("attribution_sha256")
    if expected is None:
        return None
    path = directory / ATTRIBUTION_FILE
    if not path.is_file() or sha256(path) != expected:
        state = "missing" if not path.is_file() else "changed since blend wrote it"
        raise DaigtError(f"{path}: {state}; {rerun}")
    return joblib.load(path)

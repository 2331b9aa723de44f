"""The shared set-up of every run: project config, data paths, the canonical train frame with its folds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from daigt.config import PROJECT_CONFIG, load_config, repo_path
from daigt.data import CANONICAL, binary_labels, load_essays
from daigt.dedup import DEDUP_CACHE_GLOB, DedupConfig, deduplicate, link_siblings, normalise
from daigt.errors import DaigtError
from daigt.folds import FoldConfig, HoldoutConfig, load_or_create_folds, load_or_create_holdout
from daigt.schema import Invalid
from daigt.submission import sample_beside
from essayio import console

PLACE_DATA = "see docs/data.md, or pass --{flag} PATH"
# a configured train.csv that is absent falls back to what `kaggle competitions download` unpacks beside it
DEFAULT_TRAIN, KAGGLE_TRAIN = "train.csv", "train_essays.csv"
MIN_PER_CLASS_PER_FOLD = 2  # essays of each class every fold needs for a meaningful AUC
EXTERNAL_DATA_HINT = "competitors add external generated essays (docs/data.md: 'Training data beyond Kaggle's')"


@dataclass
class ProjectConfig:
    """configs/project.yaml: where the essays live, the folds, de-duplication, the models ``--model all`` trains."""

    PROFILE_SECTION: ClassVar[str] = "project"  # what a profile's project: section overlays (config.py)

    # one file or a list (rows of a file without a source column get the file's name as source); Kaggle's
    # data/train_essays.csv is used when data/train.csv is absent
    train: str | list[str] = "data/train.csv"
    test: str | None = "data/test_essays.csv"  # the essays to submit for (Kaggle's test); null: none
    sample_submission: str | None = None  # null: sample_submission.csv next to the test file, if any
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> column in your file
    folds: FoldConfig = field(default_factory=FoldConfig)
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    artifacts: str = "artifacts"  # artifacts/<model>/fold<k>/
    # a recipe: each fold model also scores its held-out essays after it, and the stacker trains on those rows
    # too, so style features an attack moves weigh less (e.g. configs/augment/stacker_attack.yaml); null: off
    stacker_attack: str | None = None
    models: list[str] = field(default_factory=list)  # each is configs/models/<name>.yaml (or a YAML path)

    def check(self) -> None:
        twice = sorted({m for m in self.models if self.models.count(m) > 1})
        if twice:
            raise Invalid(f"'{twice[0]}' is listed twice: each model is trained and blended once", "models")
        for name in self.columns:
            if name not in CANONICAL:
                raise Invalid(f"'{name}' is not a canonical column (use {', '.join(CANONICAL)})", f"columns.{name}")


@dataclass
class Project:
    config: ProjectConfig
    train_paths: list[Path]
    test_path: Path | None
    artifacts: Path

    _train: tuple[pd.DataFrame, dict[str, int]] | None = field(init=False, default=None, repr=False)
    _holdout: pd.DataFrame | None = field(init=False, default=None, repr=False)
    # data warnings (conflicting duplicate labels, test ids that are training ids); off in --jobs workers,
    # whose parent already said them once
    warn: bool = field(default=True, repr=False)
    # --sample N: a quick run on N training essays (stratified, seeded), with folds, holdout and artifacts of its
    # own (sample-N/ beside the usual ones), so it never touches the full run's
    sample: int | None = None

    @classmethod
    def load(
        cls,
        config_path: str | Path | None = None,
        train: str | Path | list[str] | None = None,
        test: str | Path | None = None,
        artifacts: str | Path | None = None,
        sample: int | None = None,
    ) -> Project:
        """CLI paths are taken as given (relative to the working directory); config paths are repo-relative."""
        if sample is not None and sample < 2:
            raise DaigtError(f"--sample {sample}: give the number of training essays to use (e.g. 500)")
        config = load_config(ProjectConfig, config_path or PROJECT_CONFIG)
        test_path = Path(test) if test else (repo_path(config.test) if config.test else None)
        if train:
            train_paths = [Path(t) for t in ([train] if isinstance(train, str | Path) else train)]
        else:
            configured = [config.train] if isinstance(config.train, str) else list(config.train)
            train_paths = [kaggle_fallback(repo_path(t)) for t in configured]
        root = Path(artifacts) if artifacts else repo_path(config.artifacts)
        return cls(
            config=config,
            train_paths=train_paths,
            test_path=test_path,
            artifacts=root / f"sample-{sample}" if sample else root,
            sample=sample,
        )

    @property
    def train_path(self) -> str:
        """The training file(s), as one label for messages and metadata."""
        return " + ".join(str(p) for p in self.train_paths)

    def train_command(self, model: str = "all", fold: str = "all") -> str:
        """The fold-training command for this data, for hints (the --train it needs included)."""
        sample = f" --sample {self.sample}" if self.sample else ""
        files = " ".join(map(str, self.train_paths))
        return f"python src/train_fold.py --fold {fold} --model {model} --train {files}{sample}"

    def input_paths(self) -> list[Path]:
        """The files the project reads: no output may replace them or a folder holding them."""
        return [*self.train_paths, *([self.test_path] if self.test_path else [])]

    @property
    def folds(self) -> FoldConfig:
        return self.config.folds

    @property
    def dedup(self) -> DedupConfig:
        return self.config.dedup

    def _own(self, path: str) -> Path:
        """A configured folds/holdout path, moved into sample-N/ beside it for a --sample run."""
        path_ = repo_path(path)
        return path_.parent / f"sample-{self.sample}" / path_.name if self.sample else path_

    @property
    def folds_path(self) -> Path:
        return self._own(self.folds.path)

    @property
    def holdout_path(self) -> Path:
        return self._own(self.holdout.path)

    @property
    def cache_dir(self) -> Path:
        """Where run caches keyed by their inputs live (duplicate clusters, attacked texts): beside the folds."""
        return self.folds_path.parent

    @property
    def columns(self) -> dict[str, str]:
        return dict(self.config.columns)

    @property
    def models(self) -> list[str]:
        return list(self.config.models)

    def first_model(self) -> str:
        """What ``train_fold`` trains without ``--model``: the first of ``models:``."""
        if not self.models:
            raise DaigtError(
                "no model to train: pass --model NAME, or list models under 'models:' in the project config"
            )
        return self.models[0]

    @property
    def holdout(self) -> HoldoutConfig:
        return self.config.holdout

    def train_frame(self, rebuild_folds: bool = False) -> tuple[pd.DataFrame, dict[str, int]]:
        """Canonical train rows (after de-duplication, without the locked holdout) with their ``fold``; the
        holdout and the folds are drawn on first use.

        Loaded once per Project, so `--model all` reads, de-duplicates and checks the data once."""
        if self._train is not None and not rebuild_folds:
            return self._train[0].copy(), dict(self._train[1])
        missing = [p for p in self.train_paths if not p.is_file()]
        if missing:
            raise DaigtError(f"no training data at {missing[0]}: {PLACE_DATA.format(flag='train')}")
        frame = load_training_files(self.train_paths, self.columns)
        if self.sample and self.sample < len(frame):
            frame = stratified_sample(frame, self.sample, self.folds.seed)
        check_class_counts(frame, self.folds.n_folds, self.train_path)
        cache_dir = self.cache_dir
        cached = set(cache_dir.glob(DEDUP_CACHE_GLOB))
        try:
            frame, report = deduplicate(frame, self.dedup, cache_dir=cache_dir)
            if self.folds.siblings is not None:  # rewrites share a cluster, so every split keeps them together
                frame["dup_cluster"] = link_siblings(frame, self.folds.siblings)
            locked = load_or_create_holdout(
                frame, self.holdout, self.holdout_path, self.train_path, force=rebuild_folds
            )
            self._holdout = frame[locked].reset_index(drop=True)
            frame = frame[~locked].reset_index(drop=True)
            folds = load_or_create_folds(frame, self.folds, self.folds_path, self.train_path, force=rebuild_folds)
        except DaigtError:  # refused data leaves nothing behind, not even its de-duplication cache
            for path in set(cache_dir.glob(DEDUP_CACHE_GLOB)) - cached:
                path.unlink(missing_ok=True)
            raise
        if report["clusters_with_conflicting_labels"] and self.warn:
            console.warn(
                f"{self.train_path}: {report['clusters_with_conflicting_labels']} groups of duplicate essays "
                "carry both labels (they share a fold; check the sources that disagree)"
            )
        report["holdout_rows"] = int(locked.sum())
        self._train = (frame.assign(fold=folds["fold"].to_numpy()), report)
        return self._train[0].copy(), dict(report)

    def summary(self) -> str:
        """One line on the data a run trains on: files, essays per class, the holdout, the folds."""
        train, report = self.train_frame()
        y = binary_labels(train["label"])
        sample = f" (--sample {self.sample})" if self.sample else ""
        return (
            f"[data] {self.train_path}{sample}: {len(train):,} training essays ({int(y.sum()):,} AI, "
            f"{int((y == 0).sum()):,} human) in {self.folds.n_folds} folds, {report['holdout_rows']:,} in the "
            "locked holdout"
        )

    def holdout_frame(self) -> pd.DataFrame:
        """The locked holdout's labelled essays (empty with holdout.fraction: 0). Score it; never tune on it."""
        if self._holdout is None:
            self.train_frame()
        assert self._holdout is not None
        return self._holdout.copy()

    def test_frame(self) -> pd.DataFrame:
        if self.test_path is None or not self.test_path.is_file():
            raise DaigtError(f"no test essays at {self.test_path}: {PLACE_DATA.format(flag='test')}")
        test = load_essays(self.test_path, "test", self.columns)
        if self._train is not None:
            self._warn_if_test_is_training(test)
        return test

    def _warn_if_test_is_training(self, test: pd.DataFrame) -> None:
        """Test essays that are training essays, by id or by text (the same text under new ids): usually the
        training file given as the test file. Their scores are not held-out scores."""
        frames = [self._train[0], *([self._holdout] if self._holdout is not None else [])]
        trained = pd.concat([f[["id", "text"]] for f in frames], ignore_index=True)
        shared = test["id"][test["id"].isin(trained["id"])].tolist()
        same_text = test["id"][test["text"].map(normalise).isin(set(trained["text"].map(normalise)))].tolist()
        for found, how in ((shared, "ids"), (same_text, "texts")):
            if found and self.warn:
                console.warn(
                    f"{len(found)} of {len(test)} test {how} in {self.test_path} are also training {how} "
                    f"(e.g. ids {found[:3]}): is --test the training file? Their scores are not held-out scores"
                )
                return

    def sample_submission_path(self) -> Path | None:
        """Configured sample, else sample_submission.csv beside the test file, else none."""
        if self.config.sample_submission:
            return repo_path(self.config.sample_submission)
        return sample_beside(self.test_path) if self.test_path is not None else None


def stratified_sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows with the classes in their proportions (at least one of each), in file order."""
    y = binary_labels(frame["label"])
    rng = np.random.default_rng(seed)
    chosen = []
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        take = min(len(rows), max(1, round(n * len(rows) / len(frame))))
        chosen.append(rng.choice(rows, take, replace=False))
    return frame.iloc[np.sort(np.concatenate(chosen))].reset_index(drop=True)


def kaggle_fallback(path: Path) -> Path:
    """``path``, or Kaggle's train_essays.csv beside it when ``path`` is an absent train.csv."""
    kaggle = path.with_name(KAGGLE_TRAIN)
    return kaggle if path.name == DEFAULT_TRAIN and not path.exists() and kaggle.exists() else path


def load_training_files(paths: list[Path], columns: dict[str, str]) -> pd.DataFrame:
    """One canonical frame from one or more files. With several, a file's rows without a source or a domain get
    the file's name as source and domain, and ids a later file repeats are prefixed with its name (the texts
    themselves are compared by de-duplication, which groups copies of one essay across files)."""
    frames = [load_essays(p, "train", columns) for p in paths]
    if len(frames) == 1:
        return frames[0]
    seen: set[str] = set()
    for path, frame in zip(paths, frames, strict=True):
        for column in ("source", "domain"):
            frame.loc[frame[column] == "", column] = path.stem
        clash = frame["id"].isin(seen)
        frame.loc[clash, "id"] = path.stem + ":" + frame.loc[clash, "id"]
        seen.update(frame["id"])
    return pd.concat(frames, ignore_index=True)


def check_class_counts(frame: pd.DataFrame, n_folds: int, label: str) -> None:
    """Every fold must hold both classes; say so with the counts (Kaggle's train_essays.csv has 3 AI essays)."""
    labels = frame["label"].to_numpy(dtype=float)
    ai = int((binary_labels(labels) == 1).sum())
    counts = {"human": len(frame) - ai, "AI-generated": ai}
    short = {name: n for name, n in counts.items() if n < MIN_PER_CLASS_PER_FOLD * n_folds}
    if short:
        halves = int((labels == 0.5).sum())  # soft labels of exactly 0.5 count as AI when rounded
        have = ", ".join(f"{n} {name}" for name, n in counts.items())
        if halves:
            have += f" (rounding soft labels at 0.5; {halves} of them are exactly 0.5, which says neither)"
        need = MIN_PER_CLASS_PER_FOLD * n_folds
        raise DaigtError(
            f"{label} has {have} essays: {n_folds} folds need at least {need} of each class "
            f"({MIN_PER_CLASS_PER_FOLD} per fold); too few {' and '.join(short)} essays — {EXTERNAL_DATA_HINT}"
        )

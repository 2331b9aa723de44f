"""What a transformer fold's training looked like: loss and learning rate per optimizer step, validation loss
and AUC per evaluation. One owner of the curve files, written into the fold's ``model/`` folder:

- ``curves.json``        {"train": [{step, epoch, loss, lr}], "validation": [{step, epoch, loss, auc}], "best": {...}}
- ``training_curve.png`` loss (train and validation) and validation AUC against the optimizer step
- ``tensorboard/``       the same as TensorBoard event files (``tensorboard --logdir artifacts``)

During training the event files grow in the fold's work folder, so a long run can be watched live. With
``wandb: true`` every point also goes to Weights & Biases (the ``wandb`` package, installed by the user).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from daigt.errors import DaigtError
from daigt.plots import save_figure, subplots
from daigt.schema import Invalid

CURVES_FILE, CURVE_PLOT, TENSORBOARD_DIR = "curves.json", "training_curve.png", "tensorboard"


@dataclass
class EvaluationSpec:
    """``params.evaluation`` of a transformer config: watch a validation split while training."""

    # train_split: a share of the fold's training rows is held out and watched (OOF stays honest);
    # held_out_fold: the fold's held-out rows are watched (as the winning solutions did; OOF then reads high)
    rows: Literal["train_split", "held_out_fold"] = "train_split"
    fraction: float = 0.1  # train_split: training rows held out (stratified, whole duplicate clusters)
    every: int = 0  # optimizer steps between evaluations; 0: at the end of each epoch
    patience: int | None = None  # stop after this many evaluations without a better validation AUC; null: never
    keep_best: bool = True  # end with the weights of the best evaluation, not the last step's

    def check(self) -> None:
        if not 0 < self.fraction < 0.5:
            raise Invalid(f"must lie in (0, 0.5), got {self.fraction}", "fraction")
        if self.every < 0:
            raise Invalid(f"must be >= 0, got {self.every}", "every")
        if self.patience is not None and self.patience < 1:
            raise Invalid(f"must be >= 1 or null, got {self.patience}", "patience")


@dataclass
class LoggingSpec:
    """``params.logging`` of a transformer config."""

    every: int = 10  # optimizer steps between logged training-loss points (the mean since the last one)
    tensorboard: bool = True  # also write TensorBoard event files (tensorboard --logdir artifacts)
    wandb: bool = False  # needs `pip install wandb`; its project and mode come from WANDB_* variables

    def check(self) -> None:
        if self.every < 1:
            raise Invalid(f"must be >= 1, got {self.every}", "every")


class TrainingLog:
    """Collects the points on the main rank; ``save`` writes the curve files into a fold's model folder."""

    def __init__(self, spec: LoggingSpec, live_dir: Path | None, enabled: bool, run_name: str) -> None:
        self.spec, self.enabled = spec, enabled
        self.train: list[dict[str, float]] = []
        self.validation: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        self._pending: list[float] = []
        self._live_dir = live_dir / TENSORBOARD_DIR if live_dir is not None else None
        self._writer: Any = None
        self._wandb: Any = None
        if not enabled:
            return
        if spec.tensorboard and self._live_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            shutil.rmtree(self._live_dir, ignore_errors=True)  # a resumed run logs from its restart on
            self._writer = SummaryWriter(str(self._live_dir))
        if spec.wandb:
            try:
                import wandb
            except ModuleNotFoundError:
                raise DaigtError("logging.wandb: true needs the wandb package: pip install wandb") from None
            self._wandb = wandb.init(name=run_name, reinit=True)

    def step(self, step: int, epoch: int, loss: float, lr: float) -> None:
        """One optimizer step's loss; a point is kept every ``logging.every`` steps (the mean since the last)."""
        if not self.enabled:
            return
        self._pending.append(loss)
        if step % self.spec.every:
            return
        point = {"step": step, "epoch": epoch, "loss": sum(self._pending) / len(self._pending), "lr": lr}
        self._pending.clear()
        self.train.append(point)
        self._emit("train", point, ("loss", "lr"))

    def evaluation(self, step: int, epoch: int, loss: float, auc: float, best: bool) -> None:
        if not self.enabled:
            return
        point = {"step": step, "epoch": epoch, "loss": loss, "auc": auc}
        self.validation.append(point)
        if best:
            self.best = point
        self._emit("validation", point, ("loss", "auc"))

    def _emit(self, split: str, point: dict[str, float], keys: tuple[str, ...]) -> None:
        step = int(point["step"])
        if self._writer is not None:
            for key in keys:
                self._writer.add_scalar(f"{key}/{split}", point[key], step)
            self._writer.flush()
        if self._wandb is not None:
            self._wandb.log({f"{split}/{key}": point[key] for key in keys}, step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def save(self, directory: Path) -> None:
        """curves.json, the PNG, and the TensorBoard folder into ``directory`` (a fold's model folder)."""
        self.close()
        if not self.enabled:
            return
        curves = {"train": self.train, "validation": self.validation, "best": self.best}
        (directory / CURVES_FILE).write_text(json.dumps(curves, indent=1))
        if self._live_dir is not None and self._live_dir.is_dir():
            shutil.copytree(self._live_dir, directory / TENSORBOARD_DIR)
        if self.train or self.validation:
            curve_plot(curves, directory / CURVE_PLOT)


def curve_plot(curves: dict[str, Any], path: Path) -> None:
    fig, (loss_ax, auc_ax) = subplots(1, 2, figsize=(10, 3.6))
    for split, style in (("train", "-"), ("validation", "o-")):
        points = curves[split]
        if points:
            loss_ax.plot([p["step"] for p in points], [p["loss"] for p in points], style, label=split)
    loss_ax.set(xlabel="optimizer step", ylabel="loss", title="loss")
    loss_ax.legend()
    validation = curves["validation"]
    if validation:
        auc_ax.plot([p["step"] for p in validation], [p["auc"] for p in validation], "o-", color="C1")
    if curves["best"]:
        best = curves["best"]
        auc_ax.axvline(best["step"], color="grey", linestyle=":", label=f"kept: step {best['step']}")
        auc_ax.legend()
    auc_ax.set(xlabel="optimizer step", ylabel="ROC AUC", title="validation AUC")
    save_figure(fig, path)

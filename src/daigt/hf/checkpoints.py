"""Resumable training state: trainable weights, optimizer, scheduler, step and every rank's RNG.

Under DeepSpeed the engine writes its own (sharded) checkpoint; in plain torch rank 0 writes one file. Either
way ``workdir/checkpoint/latest_step`` names the last complete checkpoint, so a killed run resumes from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from daigt import distributed
from essayio import atomic, console

CHECKPOINT_DIR, RNG_FILE, LATEST, STATE_FILE = "checkpoint", "rng_rank{rank}.pt", "latest_step", "state.pt"


def trainable_names(model: torch.nn.Module) -> list[str]:
    return [name for name, param in model.named_parameters() if param.requires_grad]


class Checkpoints:
    """Save and restore one training run's state in ``workdir/checkpoint`` (nothing when workdir is None).

    ``engine`` is the DeepSpeed engine when there is one; ``frozen_base`` (LoRA) leaves the frozen weights out."""

    def __init__(
        self,
        workdir: Path | None,
        model: torch.nn.Module,
        optimizer: Any,
        scheduler: Any,
        engine: Any = None,
        frozen_base: bool = False,
    ) -> None:
        self.root = None if workdir is None else workdir / CHECKPOINT_DIR
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.engine, self.frozen_base = engine, frozen_base

    def _rng_path(self, tag_dir: Path) -> Path:
        return tag_dir / RNG_FILE.format(rank=distributed.rank())

    def save(self, step: int) -> None:
        if self.root is None:
            return
        tag = f"step{step}"
        if self.engine is not None:
            self.engine.save_checkpoint(
                str(self.root), tag=tag, client_state={"step": step}, exclude_frozen_parameters=self.frozen_base
            )
        elif distributed.is_main():
            with atomic.atomic_dir(self.root / tag) as tmp:
                torch.save(self._plain_state(step), tmp / STATE_FILE)
        (self.root / tag).mkdir(parents=True, exist_ok=True)
        torch.save(_rng_state(), self._rng_path(self.root / tag))
        distributed.barrier()
        if distributed.is_main():
            atomic.write_text(self.root / LATEST, tag)
            for old in self.root.glob("step*"):
                if old.name != tag:
                    shutil.rmtree(old, ignore_errors=True)

    def _plain_state(self, step: int) -> dict[str, Any]:
        trainable = set(trainable_names(self.model))
        return {
            "step": step,
            "model": {k: v for k, v in self.model.state_dict().items() if k in trainable},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def restore(self) -> int:
        """The optimizer step to continue from (0 when there is no checkpoint)."""
        if self.root is None or not (self.root / LATEST).is_file():
            return 0
        tag = (self.root / LATEST).read_text().strip()
        tag_dir = self.root / tag
        if self.engine is not None:
            _, client = self.engine.load_checkpoint(str(self.root), tag=tag, load_module_strict=not self.frozen_base)
            step = int(client["step"])
        else:
            state = torch.load(tag_dir / STATE_FILE, weights_only=False)
            self.model.load_state_dict(state["model"], strict=False)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            step = int(state["step"])
        _set_rng_state(torch.load(self._rng_path(tag_dir), weights_only=False))
        if distributed.is_main():
            console.say(f"resumed from checkpoint {tag_dir} (optimizer step {step})")
        return step


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])

"""Transformer families: Hugging Face encoders (DeBERTa-v3, MiniLM, ...) and causal LMs (Mistral-7B + LoRA).

Both are sequence classifiers with one logit trained with BCE on the soft label (plus an optional pairwise
margin ranking loss), AdamW with layer-wise learning-rate decay, linear warmup then cosine decay, dynamic
padding and length-grouped batches. They differ only in how the model is built and padded (see
``EncoderFamily`` / ``CausalLMFamily``).

One training loop serves three engines: plain PyTorch (one process, CPU or GPU), and DeepSpeed ZeRO-2/3
(``params.deepspeed`` or ``--deepspeed``) for one process or many (``torchrun`` / ``deepspeed`` launchers),
on CUDA with NCCL or on CPU with gloo. Checkpoints every ``checkpoint_every`` optimizer steps hold the
trainable weights, optimizer, scheduler and every rank's RNG state; the batch order is a function of
(seed, epoch), so a killed fold resumes and ends with the same predictions as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from daigt import distributed
from daigt.config import repo_path
from daigt.errors import DaigtError
from daigt.families.base import FitContext, ModelFamily
from daigt.folds import HoldoutConfig, draw_holdout
from daigt.generators import NO_FAMILY, GeneratorVocabulary
from daigt.hf.batches import collate, encode_texts, length_grouped_batches, shard, sorted_batches
from daigt.hf.checkpoints import Checkpoints, trainable_names
from daigt.hf.loading import (
    TORCH_STACK,
    configure_runtime,
    from_pretrained,
    load_tokenizer,
    quantization_kwargs,
    set_attention_dropout,
)
from daigt.hf.loading import (
    device as compute_device,
)
from daigt.hf.training_log import EvaluationSpec, LoggingSpec, TrainingLog
from daigt.metrics import auc, peak_rss_mb
from daigt.schema import Invalid, to_dict
from essayio import atomic, console


@dataclass
class LossSpec:
    bce: float = 1.0  # weight of BCE on the soft label
    ranking: float = 0.0  # weight of the pairwise margin ranking loss (1st-place DeBERTa used it)
    margin: float = 0.5  # the ranking loss's margin between an AI and a human score


@dataclass
class GeneratorHeadSpec:
    """A second head beside the detector's: which generator family wrote an AI text (attribution.py is the CPU
    task). One shared encoder; the classification layer's first output is the detector's logit, the others one
    per family present in the fold's AI texts, trained with cross-entropy on the AI rows whose source names a
    family (the others are ignored)."""

    weight: float = 0.5  # the family loss's weight beside the detector's (bce/ranking weights in loss:)
    vocabulary: GeneratorVocabulary = field(default_factory=GeneratorVocabulary)  # source name -> family
    min_texts: int = 1  # families with fewer AI texts in the fold are not learnt

    def check(self) -> None:
        if self.weight <= 0 or self.min_texts < 1:
            raise Invalid("weight must be > 0 and min_texts >= 1")


@dataclass
class LoraSpec:
    r: int = 16  # the adapters' rank
    alpha: int = 32  # the adapters' scaling (alpha / r)
    dropout: float = 0.05  # dropout on the adapters' input
    targets: str | list[str] = "all-linear"  # the modules that get adapters (all-linear: every linear layer)


@dataclass
class TransformerParams:
    pretrained: str  # local folder, hub id, or "pkg:<module>" whose get_model_path() is a folder
    init: Literal["pretrained", "random"] = "pretrained"  # random: the architecture with fresh weights
    max_length: int = 256  # tokens per essay after truncation
    truncation: Literal["head", "tail", "head_tail"] = "head"  # which tokens are kept of a longer essay
    head_fraction: float = 0.5  # head_tail: the share of max_length taken from the start
    prompt_suffix: str | None = None  # text appended after the essay (an instruction for causal LMs)
    batch_size: int = 8  # essays per micro-batch
    eval_batch_size: int = 32  # essays per batch when scoring
    grad_accum: int = 1  # micro-batches per optimizer step
    epochs: int = 1  # passes over the fold's training rows
    max_steps: int | None = None  # optimizer steps; caps epochs (smoke runs, benchmarks)
    lr: float = 5.0e-5  # peak learning rate (AdamW)
    layerwise_lr_decay: float = 1.0  # each layer below the top gets this times the one above (1: none)
    weight_decay: float = 0.01  # AdamW's decoupled weight decay
    warmup_ratio: float = 0.1  # share of steps with a linear warm-up, then cosine decay
    max_grad_norm: float = 1.0  # gradient clipping
    loss: LossSpec = field(default_factory=LossSpec)  # the detector head's loss
    generator_head: GeneratorHeadSpec | None = None  # null: the detector's head alone
    length_grouping: bool = True  # batch essays of similar length (less padding)
    # bf16: autocast (Ampere+ GPUs, recent CPUs); fp16: autocast with dynamic loss scaling (T4, P100, V100)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, about 30 % slower
    attention_dropout: float | None = None  # 0.0 lets CPU SDPA use its fused kernel (~1.8x faster)
    threads: int | None = None  # torch CPU threads (null: torch's default)
    checkpoint_every: int = 0  # optimizer steps between resumable checkpoints; 0 = none
    deepspeed: str | None = None  # path to a DeepSpeed JSON config (configs/deepspeed/)
    lora: LoraSpec | None = None  # LoRA adapters instead of training every weight (null: full fine-tuning)
    quantization: Literal["4bit"] | None = None  # QLoRA via bitsandbytes (CUDA only)
    # a validation split watched while training: curves, early stopping, the best weights kept (hf/training_log.py)
    evaluation: EvaluationSpec | None = None
    logging: LoggingSpec = field(default_factory=LoggingSpec)  # curves.json, PNG, TensorBoard (optional wandb)

    def check(self) -> None:
        if not self.pretrained:
            raise Invalid("required: a local model folder, a hub id or pkg:<module>", "pretrained")
        for key in ("max_length", "batch_size", "eval_batch_size", "grad_accum", "epochs"):
            if getattr(self, key) < 1:
                raise Invalid(f"must be >= 1, got {getattr(self, key)}", key)


WEIGHTS_FILE, META_FILE, CONFIG_DIR, TOKENIZER_DIR = "weights.safetensors", "meta.json", "config", "tokenizer"
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
GPU_SCALE_PARAMETERS = 1e9  # a model this big is meant for a GPU: warn before spending minutes on CPU


def _hf_deepspeed_config(config: dict[str, Any]) -> Any:
    from transformers.integrations import HfDeepSpeedConfig

    return HfDeepSpeedConfig(config)


class TransformerFamily(ModelFamily):
    """The shared loop; subclasses say how to build the model and on which side to pad."""

    requirements = TORCH_STACK
    Params = TransformerParams
    trains_in_epochs = True
    padding_side = "right"

    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.model: torch.nn.Module | None = None
        self.tokenizer: Any = None
        self._engine: Any = None
        self._scaler: Any = None
        self._trained_state: dict[str, torch.Tensor] | None = None
        self._report: dict[str, Any] = {}
        self._log: TrainingLog | None = None
        self._adapter: dict[str, torch.Tensor] | None = None  # set when this fold shares its base (load_folds)
        self.generator_classes: list[str] = []  # the second head's families (empty: no second head)

    # ---- building -------------------------------------------------------------------------------
    def _build_tokenizer(self, source: str | None = None) -> Any:
        return load_tokenizer(source or self.params.pretrained, self.padding_side)

    def _build_model(self, config_dir: Path | None = None) -> torch.nn.Module:
        """Base model with a 1-logit head (pretrained, random from config, or from a saved config), LoRA on top."""
        from transformers import AutoConfig, AutoModelForSequenceClassification

        if config_dir is not None:
            config = AutoConfig.from_pretrained(config_dir)
        else:
            config = from_pretrained(AutoConfig, self.params.pretrained)
        config.num_labels = 1 + len(self.generator_classes)  # the detector's logit first, then one per family
        set_attention_dropout(config, self.params.attention_dropout)
        if config_dir is not None or self.params.init == "random":
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            model = from_pretrained(
                AutoModelForSequenceClassification,
                self.params.pretrained,
                config=config,
                ignore_mismatched_sizes=True,  # whatever head it had becomes 1 logit
                **quantization_kwargs(self.params.quantization),
            )
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id
        if self.params.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.params.lora:
            model = self._add_lora(model)
        return model

    def _add_lora(self, model: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

        cfg = self.params.lora
        assert cfg is not None
        if self.params.quantization:
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=self.params.gradient_checkpointing
            )
        lora = LoraConfig(
            task_type=TaskType.SEQ_CLS,  # keeps the new classification head trainable
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=cfg.targets,
        )
        return get_peft_model(model, lora)

    # ---- data -----------------------------------------------------------------------------------
    def _encode(self, texts: pd.Series) -> list[list[int]]:
        p = self.params
        return encode_texts(
            self.tokenizer, texts.tolist(), p.max_length, p.truncation, p.head_fraction, p.prompt_suffix
        )

    def _inputs(self, ids: list[list[int]], rows: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        batch = collate([ids[i] for i in rows], self.tokenizer.pad_token_id, self.padding_side)
        return {k: v.to(device) for k, v in batch.items()}

    def _autocast(self, device: torch.device) -> Any:
        if self.params.precision != "fp32" and self._engine is None:
            return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[self.params.precision])
        return nullcontext()

    # ---- training -------------------------------------------------------------------------------
    def _generator_targets(self, train: pd.DataFrame) -> torch.Tensor:
        """Each row's family index for the second head; -100 (ignored) for humans and unnamed sources."""
        head = self.params.generator_head
        if head is None or not self.generator_classes or "source" not in train:
            return torch.full((len(train),), -100, dtype=torch.long)
        families = head.vocabulary.families_of(train["source"], train["label"].to_numpy(dtype=float))
        index = {name: k for k, name in enumerate(self.generator_classes)}
        return torch.tensor([index.get(f, -100) for f in families], dtype=torch.long)

    def _learn_generator_classes(self, train: pd.DataFrame) -> None:
        head = self.params.generator_head
        self.generator_classes = []
        if head is not None and "source" in train:
            families = head.vocabulary.families_of(train["source"], train["label"].to_numpy(dtype=float))
            counts = pd.Series(families[families != NO_FAMILY]).value_counts()
            self.generator_classes = sorted(counts.index[counts >= head.min_texts])

    def _loss(self, logits: torch.Tensor, target: torch.Tensor, families: torch.Tensor | None = None) -> torch.Tensor:
        """The detector's loss on the first logit; with the second head, its weighted cross-entropy on the rest."""
        if logits.dim() == 1:  # the detector's logits alone
            return self._detector_loss(logits, target)
        head = self.params.generator_head
        if head is not None and families is not None and logits.shape[1] > 1 and (families >= 0).any():
            family_loss = torch.nn.functional.cross_entropy(logits[:, 1:], families, ignore_index=-100)
            return self._detector_loss(logits[:, 0], target) + head.weight * family_loss
        return self._detector_loss(logits[:, 0], target)

    def _detector_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cfg = self.params.loss
        loss = cfg.bce * torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        if cfg.ranking:
            # every ordered pair (i, j) with y_i > y_j should score s_i >= s_j + margin
            higher = (target[:, None] - target[None, :]) > 0
            if higher.any():
                gaps = logits[:, None] - logits[None, :]
                loss = loss + cfg.ranking * torch.relu(cfg.margin - gaps[higher]).mean()
        return loss

    def _parameter_groups(self, model: torch.nn.Module) -> list[dict[str, Any]]:
        """AdamW groups: layer-wise LR decay (head at ``lr``, each layer below × decay), no decay on norms/bias."""
        p = self.params
        n_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)

        def depth(name: str) -> int:
            match = re.search(r"\.layers?\.(\d+)\.", name)
            if match:
                return int(match.group(1)) + 1
            return 0 if "embed" in name else n_layers + 1

        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            lr = p.lr * p.layerwise_lr_decay ** (n_layers + 1 - depth(name))
            no_decay = param.ndim < 2 or "norm" in name.lower()
            groups.setdefault((lr, 0.0 if no_decay else p.weight_decay), []).append(param)
        return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]

    def _schedule(self, total_steps: int) -> Any:
        warmup = int(total_steps * self.params.warmup_ratio)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = (step - warmup) / max(1, total_steps - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        return factor

    def _deepspeed_config(self, world: int) -> dict[str, Any]:
        path = repo_path(str(self.params.deepspeed))
        if not path.is_file():
            raise DaigtError(f"{path}: DeepSpeed config not found; see configs/deepspeed/ for ZeRO-2/3 examples")
        config = json.loads(path.read_text())
        p = self.params
        filled = {
            "train_micro_batch_size_per_gpu": p.batch_size,
            "gradient_accumulation_steps": p.grad_accum,
            "train_batch_size": p.batch_size * p.grad_accum * world,
            "gradient_clipping": p.max_grad_norm,
        }
        for key, value in filled.items():
            if config.get(key, "auto") == "auto":
                config[key] = value
        for section in ("bf16", "fp16"):  # DeepSpeed's own mixed precision (fp16: its dynamic loss scaler)
            config.setdefault(section, {})
            if config[section].get("enabled", "auto") == "auto":
                config[section]["enabled"] = p.precision == section
        config.setdefault("steps_per_print", 10**9)
        return config

    def fit(self, train: pd.DataFrame, context: FitContext) -> None:
        # long: one training loop; its state (step, accumulation, checkpoints, the watcher) is shared by every part
        configure_runtime()
        self._warn_if_meant_for_gpu()
        p = self.params
        if p.threads:
            torch.set_num_threads(p.threads)
        use_ds = bool(p.deepspeed)
        world, rank = distributed.world_size(), distributed.rank()
        if world > 1 and not use_ds:
            raise DaigtError(f"{world} processes need DeepSpeed: set params.deepspeed or pass --deepspeed CONFIG")
        device = compute_device()
        if use_ds:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        torch.manual_seed(self.seed)
        self._engine = None
        self._scaler = torch.amp.GradScaler(device.type) if p.precision == "fp16" and not use_ds else None
        self.tokenizer = self._build_tokenizer()
        ds_config = self._deepspeed_config(world) if use_ds else None
        zero3 = ds_config is not None and ds_config.get("zero_optimization", {}).get("stage") == 3
        # ZeRO-3: while this object lives, transformers builds the model under deepspeed.zero.Init, so each
        # rank only ever holds its shard of the weights (no full fp32 copy per process at load time)
        self._hf_deepspeed = _hf_deepspeed_config(ds_config) if zero3 else None
        self._learn_generator_classes(train)
        model = self._build_model().to(device)
        if zero3 and p.precision != "fp32":  # parameters added after zero.Init (LoRA) join the shards' dtype
            for param in model.parameters():
                if not hasattr(param, "ds_id"):
                    param.data = param.data.to(AUTOCAST_DTYPES[p.precision])
        train, watch = self._validation_split(train, context.held_out)
        target = torch.tensor(train["label"].to_numpy(dtype=np.float32))
        families = self._generator_targets(train)
        epoch_ids = self._epoch_encoder(train, context.epoch_texts)

        def epoch_batches(epoch: int) -> list[np.ndarray]:
            rng = np.random.default_rng([self.seed, epoch])
            lengths = [len(x) for x in epoch_ids(epoch)]
            batches = length_grouped_batches(lengths, p.batch_size, rng, group=p.length_grouping)
            return shard(batches, rank, world)

        total_micro = len(epoch_batches(0)) * p.epochs
        total_steps = math.ceil(total_micro / p.grad_accum)
        steps_per_epoch = max(1, len(epoch_batches(0)) // p.grad_accum)
        if p.max_steps:
            total_steps = min(total_steps, p.max_steps)
        optimizer = torch.optim.AdamW(self._parameter_groups(model), lr=p.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._schedule(total_steps))
        if use_ds:
            import deepspeed

            engine, optimizer, _, scheduler = deepspeed.initialize(
                model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
            )
            self._engine = engine
        self.model = model
        load_peaks = distributed.all_gather_objects(round(peak_rss_mb(), 1))  # ZeRO-3 vs 2: what zero.Init saves
        checkpoints = Checkpoints(context.workdir, model, optimizer, scheduler, self._engine, bool(p.lora))
        step = checkpoints.restore()
        self._report = {"resumed_from_step": step} if step else {}
        log = TrainingLog(p.logging, context.workdir, distributed.is_main(), f"{type(self).__name__}-{self.seed}")
        self._log = log
        watcher = _Watcher(self, watch, p.evaluation, steps_per_epoch) if watch is not None else None

        started, samples = time.perf_counter(), 0
        bar = console.bar(
            None, context.progress and rank == 0, total=total_steps, initial=step, desc="train", unit="step"
        )
        model.train()
        stream = ((epoch, rows) for epoch in range(p.epochs) for rows in epoch_batches(epoch))
        micro_losses: list[float] = []
        for micro, (epoch, batch_rows) in enumerate(stream, start=1):
            if micro > total_steps * p.grad_accum:
                break
            if micro <= step * p.grad_accum:  # trained before the interruption; the order is reproducible
                continue
            inputs = self._inputs(epoch_ids(epoch), batch_rows, device)
            with self._autocast(device):
                logits = (self._engine or model)(**inputs).logits
            loss = self._loss(logits.float(), target[batch_rows].to(device), families[batch_rows].to(device))
            boundary = micro % p.grad_accum == 0 or micro == total_micro
            self._backward_step(loss, optimizer, scheduler, boundary)
            samples += len(batch_rows)
            micro_losses.append(loss.item())
            if boundary:
                step += 1
                step_loss = _step_loss(micro_losses, world)
                micro_losses.clear()
                bar.update(1)
                bar.set_postfix(loss=f"{step_loss:.4f}")
                log.step(step, epoch, step_loss, float(scheduler.get_last_lr()[0]))
                if p.checkpoint_every and step % p.checkpoint_every == 0 and step < total_steps:
                    checkpoints.save(step)
                if watcher is not None and watcher.due(step, total_steps) and watcher.evaluate(step, epoch, log):
                    break  # early stopping: patience spent
        bar.close()
        elapsed = time.perf_counter() - started
        self._report.update(
            {
                "optimizer_steps": step,
                "train_samples_per_second": round(samples * world / elapsed, 2) if elapsed else None,
                "engine": f"deepspeed-zero{self._zero_stage()}" if use_ds else "torch",
                "world_size": world,
                "peak_rss_mb_at_load_per_rank": load_peaks,
                "peak_rss_mb_training_per_rank": distributed.all_gather_objects(round(peak_rss_mb(), 1)),
            }
        )
        if watcher is not None:
            self._report.update(watcher.report(step))
        if watcher is not None and watcher.best_state is not None and watcher.best_step != step:
            self._restore_state(watcher.best_state)  # OOF and test predictions come from the kept weights
        self._trained_state = self._gather_trained_state()

    def _validation_split(
        self, train: pd.DataFrame, held_out: pd.DataFrame | None
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The rows to train on and, with ``evaluation``, the rows to watch: by default a stratified share of this
        fold's training rows (whole duplicate clusters; the held-out fold stays unseen), or the held-out fold."""
        spec = self.params.evaluation
        if spec is None:
            return train, None
        if spec.rows == "held_out_fold":
            if held_out is None or held_out.empty:
                raise DaigtError("evaluation.rows: held_out_fold needs a held-out fold (train through train_fold)")
            return train, held_out.reset_index(drop=True)
        watched = train["id"].isin(set(draw_holdout(train, HoldoutConfig(fraction=spec.fraction, seed=self.seed))))
        if watched.all() or not watched.any():
            raise DaigtError(f"evaluation.fraction {spec.fraction}: too few training rows to hold some out")
        return train[~watched].reset_index(drop=True), train[watched].reset_index(drop=True)

    def _restore_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load full copies of trained weights back into the live model (ZeRO-3: into each rank's shard)."""
        assert self.model is not None
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in state.items():
                param = params.get(name)
                if param is None:
                    continue
                if hasattr(param, "ds_id"):
                    import deepspeed

                    with deepspeed.zero.GatheredParameters([param], modifier_rank=0):
                        if distributed.is_main():
                            param.data.copy_(value.to(param.device, param.dtype))
                else:
                    param.data.copy_(value.to(param.device, param.dtype))

    def _epoch_encoder(self, train: pd.DataFrame, epoch_texts: Any) -> Any:
        """Token ids per epoch: the rows' own texts, or with ``epoch_texts`` (augment.each_epoch) that epoch's
        fresh copy. One epoch's ids are held at a time."""
        if epoch_texts is None:
            clean_ids = self._encode(train["text"])
            return lambda epoch: clean_ids
        cache: dict[int, list[list[int]]] = {}

        def encoded(epoch: int) -> list[list[int]]:
            if epoch not in cache:
                cache.clear()
                cache[epoch] = self._encode(epoch_texts(train, epoch))
            return cache[epoch]

        return encoded

    def _backward_step(self, loss: torch.Tensor, optimizer: Any, scheduler: Any, boundary: bool) -> None:
        if self._engine is not None:
            self._engine.backward(loss)  # DeepSpeed scales by 1/grad_accum and steps at its own boundaries
            self._engine.step()
            return
        scaler = self._scaler  # fp16 only: gradients scaled up so they do not underflow, unscaled before clipping
        (scaler.scale(loss / self.params.grad_accum) if scaler else loss / self.params.grad_accum).backward()
        if boundary:
            if scaler:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params.max_grad_norm)
            if scaler:
                scaler.step(optimizer)  # skipped when the scaled gradients overflowed; the scale then drops
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

    def _warn_if_meant_for_gpu(self) -> None:
        """One line, before any DeepSpeed op is compiled or weights are loaded, when a GPU recipe meets no GPU."""
        if torch.cuda.is_available() or not distributed.is_main():
            return
        p, reasons = self.params, []
        if p.deepspeed:
            reasons.append(f"deepspeed: {p.deepspeed}")
        if p.quantization:
            reasons.append(f"quantization: {p.quantization}")
        try:
            from transformers import AutoConfig

            config = from_pretrained(AutoConfig, p.pretrained)
            size = 12 * config.num_hidden_layers * config.hidden_size**2  # transformer blocks, roughly
            if size >= GPU_SCALE_PARAMETERS:
                reasons.append(f"~{size / 1e9:.1f}B parameters")
        except (DaigtError, AttributeError):
            pass
        if reasons:
            console.warn(
                f"this config is meant for a GPU ({', '.join(reasons)}) and no CUDA device is visible: "
                "it will run on CPU, very slowly if at all"
            )

    def _zero_stage(self) -> int:
        return int(self._engine.zero_optimization_stage()) if self._engine is not None else 0

    def _gather_trained_state(self) -> dict[str, torch.Tensor]:
        """Full copies of the trained weights (ZeRO-3 shards gathered; LoRA: the adapter and head only)."""
        assert self.model is not None
        state: dict[str, torch.Tensor] = {}
        params = dict(self.model.named_parameters())
        for name in trainable_names(self.model):
            param = params[name]
            if hasattr(param, "ds_id"):
                import deepspeed

                with deepspeed.zero.GatheredParameters([param]):
                    state[name] = param.detach().cpu().clone()
            else:
                state[name] = param.detach().cpu().clone()
        for name, buffer in self.model.state_dict().items():  # persistent buffers
            if name not in params:
                state[name] = buffer.detach().cpu().clone()
        return state

    # ---- inference ------------------------------------------------------------------------------
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.model is None:
            raise DaigtError("predict called before fit or load")
        if self._adapter is not None and getattr(self.model, "_daigt_active", None) is not self._adapter:
            self.model.load_state_dict(self._adapter, strict=False)  # this fold's adapter and head on the base
            self.model._daigt_active = self._adapter
        return self._score(self._encode(frame["text"]))

    def predict_generator(self, frame: pd.DataFrame) -> np.ndarray:
        """The second head's family probabilities (rows: essays; columns: ``generator_classes``)."""
        if not self.generator_classes:
            raise DaigtError("this model has no generator head: set params.generator_head and train it again")
        return self._score(self._encode(frame["text"]), generator=True)

    def _score(self, ids: list[list[int]], generator: bool = False) -> np.ndarray:
        """P(AI) of each encoded essay (``generator``: its family probabilities); under DeepSpeed every rank
        scores its share and all get every score."""
        assert self.model is not None
        device = next(self.model.parameters()).device
        batches = sorted_batches([len(x) for x in ids], self.params.eval_batch_size)
        if self._engine is not None:  # every rank scores its share; ZeRO-3 needs all ranks in each forward
            batches = shard(batches, distributed.rank(), distributed.world_size())
        forward = self._engine.module if self._engine is not None else self.model
        self.model.eval()
        scores: dict[int, Any] = {}
        with torch.no_grad():
            for rows in batches:
                with self._autocast(device):
                    logits = forward(**self._inputs(ids, rows, device)).logits.float()
                out = torch.softmax(logits[:, 1:], dim=1) if generator else torch.sigmoid(logits[:, 0])
                scores.update(zip(rows.tolist(), out.cpu().tolist(), strict=True))
        for part in distributed.all_gather_objects(scores):
            scores.update(part)
        return np.array([scores[i] for i in range(len(ids))], dtype=float)

    def fit_report(self) -> dict[str, Any]:
        return dict(self._report)

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        if self._trained_state is None or self.model is None:
            raise DaigtError("nothing to save: fit first")
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        base.config.save_pretrained(directory / CONFIG_DIR)
        self.tokenizer.save_pretrained(directory / TOKENIZER_DIR)
        save_file({k: v.contiguous() for k, v in self._trained_state.items()}, str(directory / WEIGHTS_FILE))
        if self._log is not None:
            self._log.save(directory)
        all_trained = all(prm.requires_grad for prm in self.model.parameters())
        meta = {"family": type(self).__name__, "params": to_dict(self.params), "seed": self.seed}
        meta["generator_classes"] = self.generator_classes
        meta["all_trained"] = all_trained
        atomic.write_json(directory / META_FILE, meta)

    @classmethod
    def load_folds(cls, directories: Sequence[Path]) -> list[ModelFamily]:
        """LoRA folds of one base share it: predict memory is one base plus K adapters, not K bases."""
        return _shared_base_folds(cls, directories) or super().load_folds(directories)

    @classmethod
    def load(cls, directory: Path) -> TransformerFamily:
        """Rebuild from the saved config when every weight was trained; else the base model plus the adapter."""
        from safetensors.torch import load_file

        configure_runtime()
        meta = json.loads((directory / META_FILE).read_text())
        family = cls(meta["params"], meta["seed"])
        family.generator_classes = list(meta.get("generator_classes", []))
        quantization = family.params.quantization
        if quantization and not torch.cuda.is_available():  # 4-bit needs CUDA: score on the full-precision base
            console.warn(
                f"{directory}: trained on a {quantization} base; no CUDA here, so it predicts on the "
                "full-precision base (scores differ slightly from the GPU's)"
            )
            quantization = None
        family.params = replace(family.params, deepspeed=None, quantization=quantization)  # the training base
        if not meta["all_trained"] and family.params.init == "random":
            raise DaigtError(f"{directory}: an adapter on a randomly initialised base cannot be rebuilt")
        family.tokenizer = family._build_tokenizer(str(directory / TOKENIZER_DIR))
        model = family._build_model(directory / CONFIG_DIR if meta["all_trained"] else None)
        missing, unexpected = model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=False)
        not_restored = sorted(set(missing) & set(trainable_names(model)))
        if unexpected or not_restored:
            raise DaigtError(f"{directory}: saved weights do not fit the model ({(unexpected or not_restored)[:3]})")
        family.model = model.to(compute_device())
        return family


def _step_loss(micro_losses: Sequence[float], world: int) -> float:
    """One optimizer step's loss: the mean over its micro-batches and, with several ranks, over the ranks, so
    two ranks log what one process with ``grad_accum`` 2 logs (the gradient is that same mean)."""
    mean = sum(micro_losses) / len(micro_losses)
    return sum(distributed.all_gather_objects(mean)) / world if world > 1 else mean


def _shared_base_folds(cls: type[TransformerFamily], directories: Sequence[Path]) -> list[TransformerFamily] | None:
    """LoRA folds of one base (same params): the base loaded once, each fold's adapter and head kept aside and
    swapped in before it predicts. None when the folds cannot share (fully trained, or different params)."""
    from safetensors.torch import load_file

    metas = [json.loads((d / META_FILE).read_text()) for d in directories]
    same = ("params", "generator_classes")  # one base, one head shape
    if len(metas) < 2 or any(m["all_trained"] or any(m.get(k) != metas[0].get(k) for k in same) for m in metas):
        return None
    first = cls.load(directories[0])
    families = [first]
    for meta in metas[1:]:
        family = cls(meta["params"], meta["seed"])
        family.params, family.tokenizer, family.model = first.params, first.tokenizer, first.model
        family.generator_classes = first.generator_classes
        families.append(family)
    for family, directory in zip(families, directories, strict=True):
        family._adapter = load_file(str(directory / WEIGHTS_FILE))
    first.model._daigt_active = first._adapter  # loaded with its own weights
    return families


class _Watcher:
    """Scores the validation rows at evaluation steps; keeps the best weights; says when patience is spent."""

    def __init__(self, family: TransformerFamily, watch: pd.DataFrame, spec: EvaluationSpec, per_epoch: int) -> None:
        self.family, self.spec = family, spec
        self.ids = family._encode(watch["text"])
        self.labels = watch["label"].to_numpy(dtype=float)
        self.every = spec.every or per_epoch
        self.best_auc, self.best_step, self.waited = -math.inf, 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_at: int | None = None

    def due(self, step: int, total_steps: int) -> bool:
        return step % self.every == 0 or step == total_steps

    def evaluate(self, step: int, epoch: int, log: TrainingLog) -> bool:
        """One evaluation; True when training should stop (every rank computes the same scores and decides alike)."""
        probabilities = np.clip(self.family._score(self.ids), 1e-7, 1 - 1e-7)
        self.family.model.train()
        loss = float(-np.mean(self.labels * np.log(probabilities) + (1 - self.labels) * np.log(1 - probabilities)))
        value = auc(self.labels, probabilities)
        improved = value > self.best_auc
        if improved:
            self.best_auc, self.best_step, self.waited = value, step, 0
            if self.spec.keep_best:
                self.best_state = self.family._gather_trained_state()
        else:
            self.waited += 1
        log.evaluation(step, epoch, loss, value, improved)
        if self.spec.patience is not None and self.waited >= self.spec.patience:
            self.stopped_at = step
            return True
        return False

    def report(self, last_step: int) -> dict[str, Any]:
        return {
            "validation_rows": len(self.ids),
            "validation_auc_best": round(self.best_auc, 6),
            "best_step": self.best_step,
            "kept_step": self.best_step if self.spec.keep_best else last_step,
            "stopped_early_at_step": self.stopped_at,
        }


class EncoderFamily(TransformerFamily):
    """Bidirectional encoders (DeBERTa-v3, BERT, MiniLM): [CLS]-pooled head, right padding."""

    padding_side = "right"


class CausalLMFamily(TransformerFamily):
    """Decoder LMs (Mistral, Llama): score from the last non-pad token, so pad on the left; LoRA by config."""

    padding_side = "left"

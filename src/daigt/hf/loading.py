"""Loading Hugging Face models and tokenizers from a local folder, the hub cache, a pip package or the hub.

Shared by every LM-based family (the trained transformer classifiers, zero-shot scorers). Importing this module
changes nothing: ``configure_runtime()`` (called when a family starts work) sets what must precede a DeepSpeed
import and quiets the expected "newly initialised head" warnings.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from daigt import distributed
from daigt.config import repo_path
from daigt.errors import DaigtError

# what an LM-based family needs at run time; torch itself comes from the Kaggle image (its CUDA build)
TORCH_STACK = ("transformers", "tokenizers", "safetensors", "sentencepiece", "protobuf", "accelerate", "peft")
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")  # BERT/DeBERTa, Mistral/Llama


def configure_runtime() -> None:
    """Process-wide settings for torch/transformers/DeepSpeed work; idempotent, respects the user's environment."""
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # must precede any deepspeed import
    if "TRANSFORMERS_VERBOSITY" not in os.environ:  # a fresh classification head is expected, not news
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()


def device() -> Any:
    """This rank's GPU when there is one, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", distributed.local_rank())
    return torch.device("cpu")


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


def load_tokenizer(reference: str, padding_side: str) -> Any:
    """A tokenizer that pads on ``padding_side``, always has a pad token, and never warns about length."""
    from transformers import AutoTokenizer

    tokenizer = from_pretrained(AutoTokenizer, reference)
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.model_max_length = 10**9  # callers truncate themselves; silences the "longer than" warning
    return tokenizer


def quantization_kwargs(quantization: str | None) -> dict[str, Any]:
    """``from_pretrained`` arguments for ``quantization`` (None, or "4bit": QLoRA's nf4 through bitsandbytes)."""
    if not quantization:
        return {}
    import torch

    if quantization != "4bit":
        raise DaigtError(f"quantization: '{quantization}' is not supported (4bit or null)")
    if not torch.cuda.is_available():
        raise DaigtError("quantization: 4bit needs a CUDA GPU and bitsandbytes; set quantization: null on CPU")
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16  # T4 / P100: fp16
    config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
    )
    return {"quantization_config": config}


def set_attention_dropout(config: Any, value: float | None) -> None:
    """Override the attention dropout under whichever name the architecture uses (None keeps the model's)."""
    if value is None:
        return
    for key in ATTENTION_DROPOUT_KEYS:
        if hasattr(config, key):
            setattr(config, key, float(value))

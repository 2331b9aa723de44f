"""Token-level plumbing shared by every transformer family: truncation, length-grouped batches, padding.

Essays are tokenized once without special tokens, cut to the budget (head, tail or head+tail), then
wrapped in the tokenizer's own special-token template, so the same code serves BERT/DeBERTa ([CLS] … [SEP])
and Llama/Mistral (<s> …, left-padded, optional prompt suffix after the essay).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from daigt.errors import DaigtError

TRUNCATIONS = ("head", "tail", "head_tail")


def special_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a single sequence."""
    inner = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(inner) + 1):
        if full[start : start + len(inner)] == inner:
            return list(full[:start]), list(full[start + len(inner) :])
    return [], []


def truncate(ids: Sequence[int], budget: int, how: str, head_fraction: float = 0.5) -> list[int]:
    if len(ids) <= budget:
        return list(ids)
    if how == "head":
        return list(ids[:budget])
    if how == "tail":
        return list(ids[len(ids) - budget :])
    if how == "head_tail":
        head = round(budget * head_fraction)
        return list(ids[:head]) + list(ids[len(ids) - (budget - head) :])
    raise DaigtError(f"truncation: '{how}' is not one of {', '.join(TRUNCATIONS)}")


def encode_texts(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    truncation: str = "head",
    head_fraction: float = 0.5,
    suffix: str | None = None,
) -> list[list[int]]:
    """Token ids of each text, at most ``max_length`` long, special tokens and suffix included."""
    before, after = special_template(tokenizer)
    suffix_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else []
    budget = max_length - len(before) - len(after) - len(suffix_ids)
    if budget < 1:
        raise DaigtError(f"max_length {max_length} leaves no room for the essay after special tokens and suffix")
    bodies = tokenizer([str(t) for t in texts], add_special_tokens=False)["input_ids"]
    return [before + truncate(ids, budget, truncation, head_fraction) + suffix_ids + after for ids in bodies]


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator, group: bool = True, mega: int = 32
) -> list[np.ndarray]:
    """Shuffled batches; with ``group``, rows in a batch have similar lengths, so padding is small.

    Rows are shuffled, cut into mega-batches of ``mega`` batches, sorted by length inside each, split,
    and the batch order is shuffled again: randomness across batches, little padding within them.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    if group:
        chunks = [order[i : i + batch_size * mega] for i in range(0, len(order), batch_size * mega)]
        order = np.concatenate([c[np.argsort(-lengths[c], kind="stable")] for c in chunks]) if chunks else order
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Inference batches, longest first: least padding, and an out-of-memory error shows up at once."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shard(batches: list[np.ndarray], rank: int, world: int) -> list[np.ndarray]:
    """This rank's batches; every rank gets the same count (the list is cycled), as collectives require."""
    if world == 1 or not batches:
        return batches
    padded = batches + [batches[i % len(batches)] for i in range((-len(batches)) % world)]
    return padded[rank::world]


def collate(sequences: Sequence[Sequence[int]], pad_id: int, side: str = "right") -> dict[str, torch.Tensor]:
    """Pad to the longest sequence of the batch (dynamic padding) on the tokenizer's side."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        ids[row, span] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return {"input_ids": ids, "attention_mask": mask}

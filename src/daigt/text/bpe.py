"""Byte-level BPE tokenizers learnt from a run's own essays (Hugging Face ``tokenizers``), for the families that
read sub-word tokens instead of regex words: ``tfidf`` (token n-gram TF-IDF) and ``ngram_lm`` (token n-gram LMs).

Sub-words shared by many spellings keep matching under typos and unseen vocabulary, which is why they held up
best on held-out sources (docs/generalization.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

ENCODE_BATCH = 1024  # texts per tokenizers.encode_batch call: parallel inside a batch, bounded memory across
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class TokenizerSpec:
    """``tokenizer:``: a byte-level BPE tokenizer trained on the run's own essays, whose token n-grams the family
    then reads (the public DAIGT notebooks' strongest trick: fitted on the test essays, sub-word units follow
    whatever the unseen generators and their typos look like)."""

    kind: Literal["bpe"] = "bpe"  # byte-level BPE (Hugging Face tokenizers)
    # label-free, once per run: test = the test essays; train+test = every training essay (all folds) and test
    fit_on: Literal["test", "train+test"] = "train+test"
    vocab_size: int = 30522  # sub-word units learnt
    min_frequency: int = 2  # a merge needs this many occurrences
    lowercase: bool = False  # lowercase before learning and tokenizing


def train_bpe(texts: Sequence[str], spec: TokenizerSpec) -> Any:
    """A byte-level BPE tokenizer (Hugging Face ``tokenizers``) trained on ``texts``: NFC (+ lowercase), bytes."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    steps = [normalizers.NFC(), *([normalizers.Lowercase()] if spec.lowercase else [])]
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size, min_frequency=spec.min_frequency, special_tokens=["[UNK]"], show_progress=False
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


def bpe_ids(tokenizer: Any, texts: Sequence[str]) -> list[np.ndarray]:
    """Each text's BPE token ids, ``ENCODE_BATCH`` texts per call: an ``Encoding`` keeps ids, offsets, masks
    and token strings per token, so the whole corpus's at once (10^5 essays at scale) would hold gigabytes."""
    texts = list(texts)
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # fast: no offsets (tokenizers>=0.21)
    return [
        np.array(encoding.ids, dtype=np.int32)
        for start in range(0, len(texts), ENCODE_BATCH)
        for encoding in encode(texts[start : start + ENCODE_BATCH])
    ]


def token_table(tokenizer: Any) -> np.ndarray:
    """The tokenizer's token strings, indexed by id."""
    return np.array([tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())], dtype=object)

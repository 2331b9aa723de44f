"""Tiny Hugging Face models built on the spot (no downloads): a DeBERTa-v2 encoder and a Mistral causal LM,
each with a sentencepiece tokenizer trained on the test essays and saved as a from_pretrained folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sentencepiece as spm

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def _sentencepiece(texts: Sequence[str], path: Path, vocab_size: int, **specials: int) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)),
        model_prefix=str(path),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        minloglevel=2,
        **specials,
    )


def tiny_deberta(folder: Path, texts: Sequence[str]) -> Path:
    from transformers import DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    _sentencepiece(texts, folder / "spm", 300, pad_id=0, unk_id=1, bos_id=2, eos_id=3)
    tokenizer = DebertaV2Tokenizer.from_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = DebertaV2Config(vocab_size=len(tokenizer), max_position_embeddings=256, pad_token_id=0, **TINY)
    DebertaV2Model(config).save_pretrained(folder)
    return folder


def tiny_mistral(folder: Path, texts: Sequence[str]) -> Path:
    from transformers import LlamaTokenizer, MistralConfig, MistralForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    _sentencepiece(texts, folder / "tokenizer", 300, pad_id=-1, unk_id=0, bos_id=1, eos_id=2)
    tokenizer = LlamaTokenizer.from_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = MistralConfig(vocab_size=len(tokenizer), num_key_value_heads=1, max_position_embeddings=256, **TINY)
    MistralForCausalLM(config).save_pretrained(folder)
    return folder

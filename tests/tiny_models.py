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


def tiny_deberta(folder: Path, texts: Sequence[str], **config_overrides: float) -> Path:
    """``config_overrides`` change the architecture's config (e.g. dropout 0 where ranks must match exactly)."""
    from transformers import DebertaV2Config, DebertaV2Model, DebertaV2Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    _sentencepiece(texts, folder / "spm", 300, pad_id=0, unk_id=1, bos_id=2, eos_id=3)
    tokenizer = DebertaV2Tokenizer.from_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = DebertaV2Config(
        vocab_size=len(tokenizer), max_position_embeddings=256, pad_token_id=0, **{**TINY, **config_overrides}
    )
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


def tiny_marian_pair(root: Path, texts: Sequence[str], pivot: str = "es") -> Path:
    """``root/opus-mt-en-<pivot>`` and ``root/opus-mt-<pivot>-en``: random tiny MarianMT models (engine tests)."""
    import json

    import sentencepiece
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    root.mkdir(parents=True, exist_ok=True)
    specials = {"unk_id": 2, "bos_id": -1, "eos_id": 1, "pad_id": 0}
    _sentencepiece(texts, root / "sp", 120, unk_piece="<unk>", eos_piece="</s>", pad_piece="<pad>", **specials)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(root / "sp.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    for pair in (f"opus-mt-en-{pivot}", f"opus-mt-{pivot}-en"):
        folder = root / pair
        folder.mkdir(exist_ok=True)
        for name in ("source.spm", "target.spm"):
            (folder / name).write_bytes((root / "sp.model").read_bytes())
        (folder / "vocab.json").write_text(json.dumps(vocab))
        files = {
            "source_spm": folder / "source.spm",
            "target_spm": folder / "target.spm",
            "vocab": folder / "vocab.json",
        }
        MarianTokenizer(**{k: str(v) for k, v in files.items()}).save_pretrained(folder)
        config = MarianConfig(
            vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
            pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
        )  # fmt: skip
        MarianMTModel(config).save_pretrained(folder)
    return root


def tiny_bert_mlm(folder: Path, texts: Sequence[str]) -> Path:
    """A tiny BERT masked LM with a WordPiece vocabulary of the essays' words (nlpaug's contextual op)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    wordpiece.train_from_iterator(list(texts), trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    vocab = sorted(wordpiece.get_vocab().items(), key=lambda item: item[1])
    (folder / "vocab.txt").write_text("\n".join(token for token, _ in vocab) + "\n")
    BertTokenizerFast.from_pretrained(str(folder)).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **TINY)
    BertForMaskedLM(config).save_pretrained(folder)
    return folder

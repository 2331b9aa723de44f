"""Back-translation (English -> pivot -> English) through a pluggable engine.

``apertium``: Debian's rule-based apertium-eng-spa, offline, batched: essays are joined with numeric marker
paragraphs that the translator passes through unchanged, so one pipeline call translates a whole chunk.
``marian``: MarianMT through transformers (Helsinki-NLP/opus-mt-en-<pivot> and back), batched, on GPU when
present; weights from a local folder or the hub cache.
A missing engine fails before any essay is touched, with what to install.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from augment.errors import AugmentError

MARKER = 9_137_000  # "\n\n<MARKER+i>\n\n" between essays; apertium leaves numbers alone


class EngineMissing(AugmentError):
    pass


class Apertium:
    def __init__(self, pivot: str = "spa") -> None:
        if shutil.which("apertium") is None:
            raise EngineMissing(
                "back-translation engine 'apertium' is not installed: apt-get install apertium "
                f"apertium-eng-{pivot} (make setup does)"
            )
        self.command = f"apertium -u eng-{pivot} | apertium -u {pivot}-eng"

    def __call__(self, texts: Sequence[str]) -> list[str]:
        joined = "".join(f"\n\n{MARKER + i}\n\n{t}" for i, t in enumerate(texts))
        done = subprocess.run(self.command, shell=True, input=joined, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EngineMissing(f"apertium failed: {done.stderr.strip()[:300]}")
        pieces = re.split(r"\n\n(\d{7})\n\n", done.stdout)
        out = {int(pieces[i]) - MARKER: pieces[i + 1] for i in range(1, len(pieces) - 1, 2)}
        return [out.get(i, t).strip("\n") or t for i, t in enumerate(texts)]  # fall back to the original


class Marian:
    def __init__(self, pivot: str = "es", model_dir: str | None = None, batch_size: int = 16) -> None:
        try:
            import torch
            from transformers import MarianMTModel, MarianTokenizer
        except ImportError as err:  # pragma: no cover - transformers is a core requirement
            raise EngineMissing(f"marian needs transformers: {err}") from err
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.batch_size = batch_size
        self.pairs: list[tuple[Any, Any]] = []
        for src, tgt in (("en", pivot), (pivot, "en")):
            name = f"{model_dir}/opus-mt-{src}-{tgt}" if model_dir else f"Helsinki-NLP/opus-mt-{src}-{tgt}"
            try:
                tok = MarianTokenizer.from_pretrained(name)
                model = MarianMTModel.from_pretrained(name).to(self.device).eval()
            except OSError as err:
                raise EngineMissing(
                    f"MarianMT weights '{name}' not available offline: `hf download {name}` on a "
                    "connected machine, then set model_dir, or use engine: apertium"
                ) from err
            self.pairs.append((tok, model))

    def _translate(self, texts: list[str], tok: Any, model: Any) -> list[str]:
        import torch

        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = tok(texts[i : i + self.batch_size], return_tensors="pt", padding=True, truncation=True)
            with torch.no_grad():
                limit = min(512, model.config.max_position_embeddings - 2)  # sentence-sized paragraphs
                generated = model.generate(**batch.to(self.device), max_new_tokens=limit)
            out += tok.batch_decode(generated, skip_special_tokens=True)
        return out

    def __call__(self, texts: Sequence[str]) -> list[str]:
        # translate paragraph by paragraph: Marian is trained on sentences, not 500-word essays
        paragraphs = [t.split("\n\n") for t in texts]
        flat = [p for ps in paragraphs for p in ps]
        for tok, model in self.pairs:
            flat = self._translate(flat, tok, model)
        out, k = [], 0
        for ps in paragraphs:
            out.append("\n\n".join(flat[k : k + len(ps)]))
            k += len(ps)
        return out


ENGINES: dict[str, type] = {"apertium": Apertium, "marian": Marian}


def engine_options(name: str) -> tuple[str, ...]:
    """The options an engine takes (a recipe step may set these besides engine, p and intensity)."""
    if name not in ENGINES:
        raise EngineMissing(f"unknown back-translation engine '{name}' (apertium or marian)")
    return tuple(p for p in inspect.signature(ENGINES[name]).parameters if p != "self")


def make_engine(name: str, **options: Any) -> Any:
    engine_options(name)
    return ENGINES[name](**options)

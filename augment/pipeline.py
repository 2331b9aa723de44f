"""Augment a whole frame: every row kept, N deterministic copies, in worker processes (spawn-safe)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pandas as pd

from augment.errors import AugmentError
from augment.recipe import Augmenter, Recipe
from essayio import console
from essayio.table import CANDIDATES, derive_ids, find_column

ROOT = Path(__file__).resolve().parents[1]  # the repository: default recipes live in configs/augment/

HUGE_CHARS = 50_000
_WORKER: Augmenter | None = None


def _init(recipe: Recipe) -> None:
    global _WORKER
    _WORKER = Augmenter(recipe)


def _augment(job: tuple[list[str], list[str], int]) -> tuple[list[str], list[str]]:
    ids, texts, copy = job
    assert _WORKER is not None
    return _WORKER.apply(ids, texts, copy)


def warnings_summary(texts: pd.Series) -> dict[str, int]:
    letters = texts.str.count(r"[A-Za-z]")
    non_ascii_letters = texts.str.count(r"[^\W\d_A-Za-z]")
    return {
        "empty": int(texts.str.strip().eq("").sum()),
        "undecodable_bytes": int(texts.str.contains("\ufffd", regex=False).sum()),
        "control_characters": int(texts.str.contains(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]").sum()),
        "non_english": int((non_ascii_letters > letters).sum()),
        f"over_{HUGE_CHARS}_chars": int(texts.str.len().gt(HUGE_CHARS).sum()),
    }


def augment_frame(
    frame: pd.DataFrame, recipe: Recipe, copies: int, workers: int = 1, chunk: int = 64, progress: bool = True
) -> pd.DataFrame:
    text_col = find_column(frame, "text")
    if text_col is None:
        raise AugmentError(f"no text column (looked for {CANDIDATES['text']}; found {list(frame.columns)})")
    id_col = find_column(frame, "id")
    frame = frame.copy()
    frame[text_col] = frame[text_col].fillna("").astype(str)
    ids = frame[id_col].astype(str) if id_col else derive_ids(frame[text_col])
    jobs = [
        (ids.iloc[s : s + chunk].tolist(), frame[text_col].iloc[s : s + chunk].tolist(), copy)
        for copy in range(1, copies + 1)
        for s in range(0, len(frame), chunk)
    ]
    results: list[tuple[list[str], list[str]]] = []
    bar = console.bar(enabled=progress, total=len(frame) * copies, desc=f"augment ({recipe.name})", unit="essay")
    if workers > 1:
        Augmenter(recipe)  # preflight in this process: a missing engine or WordNet is one clear error, now
        with mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(recipe,)) as pool:
            for out in pool.imap(_augment, jobs):
                results.append(out)
                bar.update(len(out[0]))
    else:
        _init(recipe)
        for job in jobs:
            results.append(_augment(job))
            bar.update(len(job[0]))
    bar.close()
    parts = [frame.assign(parent_id=ids.to_numpy(), copy=0, aug_ops="")]
    per_copy = -(-len(frame) // chunk) if len(frame) else 0
    for copy in range(1, copies + 1):
        done = results[(copy - 1) * per_copy : copy * per_copy]
        texts = [t for out in done for t in out[0]]
        ops = [o for out in done for o in out[1]]
        part = frame.assign(parent_id=ids.to_numpy(), copy=copy, aug_ops=ops)
        part[text_col] = texts
        if id_col:
            part[id_col] = ids.to_numpy() + f"__aug{copy}"
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    if len(out) != len(frame) * (1 + copies):  # nothing lost, nothing invented
        raise RuntimeError(f"row count {len(out)} != {len(frame)} x {1 + copies}")
    return out

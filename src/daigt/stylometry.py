"""Label-free style statistics of each essay, the stacker's text features.

The n-gram models see *which* words an essay uses; these describe *how* it is written. They matter most where
the n-gram models are weakest: AI essays made to read like a student's (typos, slang, lowercase "i"), whose
words look human but whose text is more repetitive, less varied and more regular than a real student's.
Measured on ../shared/data/train.csv they lift the TF-IDF stacker from 0.981 to 0.988 OOF AUC (README).

Features come in groups, selected in configs/blend.yaml (``features.meta``):

- surface:    length, paragraphs, sentence length, casing, punctuation and digit shares
- lexicon:    how common the words are in English (pyspellchecker's frequency list): unknown-word rates,
              mean / spread / low quantile of log word frequency
- diversity:  type-token ratio, hapax share, moving-average TTR (length-independent), word-length spread
- repetition: repeated word n-grams, content words repeated within a short window, repeated sentences,
              zlib compression ratio
- rhythm:     sentence-length mean, spread and coefficient of variation ("burstiness")
- typography: missing space after punctuation, double spaces, leading whitespace
- punctuation: uses per word of each mark in ``marks`` (students and models punctuate differently)
"""

from __future__ import annotations

import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from daigt.errors import DaigtError
from daigt.parallel import map_in_order

ESSAYS_PER_PROCESS = 2000  # below this many essays per process, one process is faster than spawning more


@dataclass
class StyleConfig:
    """``features.stylometry`` in configs/blend.yaml: the few constants the style features are defined with."""

    mattr_window: int = 50  # words per window of the moving-average type-token ratio
    repeat_window: int = 15  # a content word seen again within this many words counts as a local repeat
    content_min_chars: int = 4  # shorter words are treated as function words for local repeats
    rare_quantile: float = 0.1  # low quantile of log word frequency (the essay's rarest words)
    marks: dict[str, str] = field(  # punctuation group: mark -> feature name (uses per word)
        default_factory=lambda: {
            ".": "period",
            ",": "comma",
            ";": "semicolon",
            ":": "colon",
            "!": "exclamation",
            "?": "question",
            "'": "apostrophe",
            '"': "quote",
            "(": "parenthesis",
            "-": "hyphen",
        }
    )


WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
SENTENCE_END = re.compile(r"[.!?]+")
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
Words = Sequence[Sequence[str]]  # each essay's lowercased words


@cache
def word_log_frequency() -> tuple[dict[str, float], float]:
    """log relative frequency of each English word (pyspellchecker's list), and the value for unseen words."""
    from spellchecker import SpellChecker

    frequency = SpellChecker(distance=1).word_frequency
    total = float(frequency.total_words)
    table = {word: float(np.log((count + 1) / total)) for word, count in frequency.dictionary.items()}
    return table, float(np.log(1 / total))


def surface(texts: pd.Series, _words: Words, _cfg: StyleConfig) -> pd.DataFrame:
    n_chars = texts.str.len().clip(lower=1)
    n_words = texts.str.split().str.len().clip(lower=1)
    n_sentences = texts.str.count(SENTENCE_END.pattern).clip(lower=1)
    return pd.DataFrame(
        {
            "meta_chars": n_chars,
            "meta_words": n_words,
            "meta_paragraphs": texts.str.count(r"\n\s*\n") + 1,
            "meta_words_per_sentence": n_words / n_sentences,
            "meta_chars_per_word": n_chars / n_words,
            "meta_upper_ratio": texts.str.count(r"[A-Z]") / n_chars,
            "meta_punct_ratio": texts.str.count(r"[^\w\s]") / n_chars,
            "meta_digit_ratio": texts.str.count(r"\d") / n_chars,
            "meta_lowercase_sentence_starts": texts.str.count(r"[.!?]\s+[a-z]") / n_sentences,
            "meta_lowercase_i": texts.str.count(r"\bi\b") / n_words,
            "meta_non_ascii": texts.str.count(r"[^\x00-\x7f]") / n_chars,
        }
    )


def lexicon(_texts: pd.Series, essays: Words, cfg: StyleConfig) -> pd.DataFrame:
    """All essays' words in one flat frame, looked up in the frequency table once (hash lookups in C)."""
    table, unseen = word_log_frequency()
    n_essays = len(essays)
    flat = pd.DataFrame(
        {
            "essay": np.repeat(np.arange(n_essays), [len(w) for w in essays]),
            "word": pd.Series([w for words in essays for w in words], dtype=object),
        }
    )
    logf = flat["word"].map(table)
    flat["unknown"] = logf.isna()
    flat["logf"] = logf.fillna(unseen).astype(float)
    by_essay = flat.groupby("essay")
    n_words = by_essay.size().reindex(range(n_essays), fill_value=0).clip(lower=1)
    unknown_types = flat[flat["unknown"]].groupby("essay")["word"].nunique()
    out = pd.DataFrame(
        {
            "lex_unknown_rate": by_essay["unknown"].sum() / n_words,
            "lex_unknown_types": unknown_types.reindex(range(n_essays), fill_value=0) / n_words,
            "lex_logfreq_mean": by_essay["logf"].mean(),
            "lex_logfreq_std": by_essay["logf"].std(ddof=0),
            "lex_logfreq_rare": by_essay["logf"].quantile(cfg.rare_quantile),
        },
        index=range(n_essays),
    )
    empty = {"lex_unknown_rate": 0.0, "lex_unknown_types": 0.0, "lex_logfreq_std": 0.0}
    return out.fillna({**empty, "lex_logfreq_mean": unseen, "lex_logfreq_rare": unseen})  # essays with no words


def word_ids(words: Sequence[str]) -> np.ndarray:
    """The essay's words as small integers (equal words, equal ids)."""
    if not len(words):
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.asarray(words), return_inverse=True)[1].astype(np.int64).ravel()


def previous_occurrence(ids: np.ndarray) -> np.ndarray:
    """For each position, the index of the same word's previous occurrence (-1 if none)."""
    order = np.argsort(ids, kind="stable")  # positions grouped by word, in text order within a word
    out = np.full(len(ids), -1, dtype=np.int64)
    same = ids[order[1:]] == ids[order[:-1]]
    out[order[1:][same]] = order[:-1][same]
    return out


def moving_ttr(previous: np.ndarray, window: int) -> float:
    """Mean distinct-word share over every ``window``-word window, in O(n): position j is new within window
    start i exactly when its previous occurrence lies before i, so it counts for starts max(prev, j-w)+1..j."""
    n = len(previous)
    if n <= window:
        return len(np.flatnonzero(previous < 0)) / max(n, 1)
    j = np.arange(n)
    first = np.maximum(previous, j - window) + 1
    last = np.minimum(j, n - window)
    return float(np.clip(last - first + 1, 0, None).sum() / ((n - window + 1) * window))


def diversity(_texts: pd.Series, essays: Words, cfg: StyleConfig) -> pd.DataFrame:
    rows = []
    for words in essays:
        n = max(len(words), 1)
        counts = Counter(words)
        previous = previous_occurrence(word_ids(words))
        lengths = np.fromiter(map(len, words), dtype=float, count=len(words))
        rows.append(
            (
                len(counts) / n,
                sum(1 for c in counts.values() if c == 1) / n,
                moving_ttr(previous, cfg.mattr_window),
                lengths.std() if len(lengths) else 0.0,
            )
        )
    return pd.DataFrame(rows, columns=["div_ttr", "div_hapax", "div_mattr", "div_word_len_std"])


def repeated_share(ids: np.ndarray, n: int) -> float:
    """Share of the essay's word n-grams that repeat an earlier one; ``ids`` are its words as small integers."""
    if len(ids) < n:
        return 0.0
    base = int(ids.max()) + 1  # an essay has at most a few thousand distinct words: 4-gram codes fit in int64
    codes = np.zeros(len(ids) - n + 1, dtype=np.int64)
    for i in range(n):
        codes = codes * base + ids[i : len(ids) - n + 1 + i]
    return 1 - len(np.unique(codes)) / len(codes)


def repetition(texts: pd.Series, essays: Words, cfg: StyleConfig) -> pd.DataFrame:
    rows = []
    for text, words in zip(texts, essays, strict=True):
        ids = word_ids(words)
        previous = previous_occurrence(ids)
        gap = np.arange(len(words)) - previous
        content = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) >= cfg.content_min_chars
        local = content & (previous >= 0) & (gap <= cfg.repeat_window)
        sentences = [s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()]
        raw = text.encode("utf-8")
        rows.append(
            (
                repeated_share(ids, 2),
                repeated_share(ids, 3),
                repeated_share(ids, 4),
                local.sum() / max(len(words), 1),
                1 - len(set(sentences)) / max(len(sentences), 1),
                len(zlib.compress(raw, 9)) / max(len(raw), 1),
            )
        )
    return pd.DataFrame(rows, columns=["rep_2gram", "rep_3gram", "rep_4gram", "rep_local", "rep_sentence", "rep_zlib"])


def rhythm(texts: pd.Series, _words: Words, _cfg: StyleConfig) -> pd.DataFrame:
    rows = []
    for text in texts:
        lengths = np.array([len(s.split()) for s in SENTENCE_END.split(text) if s.strip()], dtype=float)
        if not len(lengths):
            lengths = np.zeros(1)
        mean, std = lengths.mean(), lengths.std()
        rows.append((mean, std, std / max(mean, 1.0)))
    return pd.DataFrame(rows, columns=["rhy_sentence_mean", "rhy_sentence_std", "rhy_sentence_cv"])


def _per_word(words: Words) -> pd.Series:
    return pd.Series([max(len(w), 1) for w in words], dtype=float)


def typography(texts: pd.Series, words: Words, _cfg: StyleConfig) -> pd.DataFrame:
    n_words = _per_word(words)
    return pd.DataFrame(
        {
            "typ_no_space_after_punct": texts.str.count(r"[a-z][.,][A-Za-z]") / n_words,
            "typ_double_space": texts.str.count("  ") / n_words,
            "typ_leading_space": texts.str.match(r"\s").astype(float),
        }
    )


def punctuation(texts: pd.Series, words: Words, cfg: StyleConfig) -> pd.DataFrame:
    n_words = _per_word(words)
    marks = sorted(cfg.marks.items())  # fixed column order, however the config's mapping is ordered
    return pd.DataFrame({f"pun_{name}": texts.str.count(re.escape(mark)) / n_words for mark, name in marks})


GROUPS: dict[str, Callable[[pd.Series, Words, Mapping[str, Any]], pd.DataFrame]] = {
    "surface": surface,
    "lexicon": lexicon,
    "diversity": diversity,
    "repetition": repetition,
    "rhythm": rhythm,
    "typography": typography,
    "punctuation": punctuation,
}


def selected_groups(setting: bool | Sequence[str] | None) -> list[str]:
    """``meta: true`` means every group, ``false`` none, a list names the groups."""
    if setting is True:
        return list(GROUPS)
    if not setting:
        return []
    if isinstance(setting, str):
        setting = [setting]
    unknown = [g for g in setting if g not in GROUPS]
    if unknown:
        raise DaigtError(f"features.meta: unknown group(s) {unknown} (known: {', '.join(GROUPS)})")
    return list(setting)


def style_features(
    texts: pd.Series, groups: bool | Sequence[str] | None = True, cfg: StyleConfig | None = None, jobs: int = 0
) -> pd.DataFrame:
    """The selected feature groups for each text, one row per text, in a fixed column order.

    The groups loop per essay in Python, so large inputs are split between processes: ``jobs`` of them, or
    with 0 one per core and per ``ESSAYS_PER_PROCESS`` essays (none below that: starting one costs ~1 s)."""
    cfg = cfg or StyleConfig()
    texts = texts.astype(str).reset_index(drop=True)
    jobs = jobs or min(os.cpu_count() or 1, len(texts) // ESSAYS_PER_PROCESS)
    if jobs > 1 and len(texts) >= jobs:
        bounds = np.linspace(0, len(texts), jobs + 1).astype(int)
        chunks = [texts.iloc[a:b] for a, b in pairwise(bounds)]
        parts = map_in_order(partial(style_features, groups=groups, cfg=cfg, jobs=1), chunks, jobs)
        return pd.concat(parts, ignore_index=True)
    words = [[w.lower() for w in WORD.findall(t)] for t in texts]  # split once, shared by the groups
    frames = [GROUPS[g](texts, words, cfg).reset_index(drop=True) for g in selected_groups(groups)]
    return pd.concat(frames, axis=1) if frames else pd.DataFrame(index=texts.index)


class StyleMemo:
    """``style_features`` that computes each distinct essay once: for a run that scores the same essays many
    times (every generalization split re-reads the training essays). Rows equal a direct computation."""

    def __init__(self, groups: bool | Sequence[str] | None, cfg: StyleConfig) -> None:
        self.groups, self.cfg = groups, cfg
        self._rows: dict[str, np.ndarray] = {}
        self._columns: list[str] | None = None

    def __call__(self, texts: pd.Series) -> pd.DataFrame:
        texts = texts.astype(str).reset_index(drop=True)
        new = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if new or self._columns is None:
            computed = style_features(pd.Series(new, dtype=str), self.groups, self.cfg)
            self._columns = list(computed.columns)
            self._rows.update(zip(new, computed.to_numpy(), strict=True))
        values = np.array([self._rows[t] for t in texts]).reshape(len(texts), len(self._columns))
        return pd.DataFrame(values, columns=self._columns)

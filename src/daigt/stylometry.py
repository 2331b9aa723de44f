"""Label-free style statistics of each essay, the stacker's text features.

The n-gram models see *which* words an essay uses; these describe *how* it is written. They matter most where
the n-gram models are weakest: AI essays made to read like a student's (typos, slang, lowercase "i"), whose
words look human but whose text is more repetitive, less varied and more regular than a real student's.
Measured on ../shared/data/train.csv they lift the TF-IDF stacker from 0.981 to 0.988 OOF AUC (docs/generalization.md).

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

import hashlib
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache, cached_property, partial
from importlib import metadata
from itertools import chain, pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from daigt.config import fingerprint
from daigt.errors import DaigtError
from daigt.parallel import map_in_order
from essayio import atomic, console

STYLE_CACHE = "style-{key}.npz"  # StyleMemo's rows, under the project's cache folder (beside the folds)
DIGEST_BYTES = 16
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


@cache
def word_log_frequency() -> tuple[dict[str, float], float]:
    """log relative frequency of each English word (pyspellchecker's list), and the value for unseen words."""
    from spellchecker import SpellChecker

    frequency = SpellChecker(distance=1).word_frequency
    total = float(frequency.total_words)
    table = {word: float(np.log((count + 1) / total)) for word, count in frequency.dictionary.items()}
    return table, float(np.log(1 / total))


def first_appearances(codes: np.ndarray) -> np.ndarray:
    """True where a factorised code appears for the first time (factorisation numbers codes by first appearance,
    so that is where the code exceeds every code before it)."""
    if not len(codes):
        return np.zeros(0, bool)
    return codes == np.concatenate([[-1], np.maximum.accumulate(codes)[:-1]]) + 1


def lowercase_words(text: str) -> list[str]:
    """The text's words, lowercased (an ASCII text is lowercased whole first: the same words, 2x faster)."""
    if text.isascii():
        return WORD.findall(text.lower())
    return [w.lower() for w in WORD.findall(text)]  # lowercasing first could turn e.g. the Kelvin sign into "k"


@dataclass
class EssayWords:
    """Every essay's lowercased words, flattened into arrays: the groups compute each statistic for all essays at
    once in numpy (a loop per essay in Python was most of the blend's time at 45k essays)."""

    vocabulary: np.ndarray  # the distinct words
    ids: np.ndarray  # (words,) every word, essay after essay, as its index in ``vocabulary``
    essay: np.ndarray  # (words,) its essay
    position: np.ndarray  # (words,) its index within the essay
    keys: np.ndarray  # (words,) the word within its essay: equal words of one essay, equal keys
    previous: np.ndarray  # (words,) position of the same word's previous occurrence in the essay, -1 if none
    chars: np.ndarray  # (words,) its length in characters
    lengths: np.ndarray  # (essays,) words per essay

    @classmethod
    def of(cls, texts: Sequence[str]) -> EssayWords:
        lists = [lowercase_words(t) for t in texts]
        lengths = np.fromiter(map(len, lists), np.int64, len(lists))
        flat = np.fromiter(chain.from_iterable(lists), object, int(lengths.sum()))
        essay = np.repeat(np.arange(len(lists)), lengths)
        start = np.repeat(np.cumsum(lengths) - lengths, lengths)
        ids, vocabulary = pd.factorize(flat) if len(flat) else (np.zeros(0, np.int64), np.zeros(0, object))
        ids = ids.astype(np.int64)
        keys = pd.factorize(essay * (len(vocabulary) + 1) + ids)[0].astype(np.int64)
        before = previous_occurrence(keys)
        previous = np.where(before >= 0, before - start, -1)
        chars = np.fromiter(map(len, vocabulary), np.int64, len(vocabulary))[ids]
        return cls(vocabulary, ids, essay, np.arange(len(flat)) - start, keys, previous, chars, lengths)

    def per_essay(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` (one per word) over each essay's words."""
        return np.bincount(self.essay, values.astype(float), minlength=len(self.lengths))

    @cached_property
    def distinct(self) -> np.ndarray:
        """Distinct words per essay (positions where a word is not a repeat)."""
        return self.per_essay(self.previous < 0)

    @property
    def n(self) -> np.ndarray:
        """Words per essay, at least 1 (the denominator of every per-word rate)."""
        return np.maximum(self.lengths, 1).astype(float)


def surface(texts: pd.Series, _words: EssayWords, _cfg: StyleConfig) -> pd.DataFrame:
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


def lexicon(_texts: pd.Series, words: EssayWords, cfg: StyleConfig) -> pd.DataFrame:
    """Each distinct word looked up in the frequency table once; per-essay sums by bincount."""
    table, unseen = word_log_frequency()
    known = np.array([table.get(w, np.nan) for w in words.vocabulary], dtype=float)[words.ids]
    unknown = np.isnan(known)
    logf = np.where(unknown, unseen, known)
    mean = words.per_essay(logf) / words.n
    spread = np.sqrt(words.per_essay((logf - mean[words.essay]) ** 2) / words.n)
    rare = pd.Series(logf).groupby(words.essay).quantile(cfg.rare_quantile)
    empty = words.lengths == 0
    return pd.DataFrame(
        {
            "lex_unknown_rate": words.per_essay(unknown) / words.n,
            "lex_unknown_types": words.per_essay(unknown & (words.previous < 0)) / words.n,
            "lex_logfreq_mean": np.where(empty, unseen, mean),
            "lex_logfreq_std": spread,
            "lex_logfreq_rare": rare.reindex(range(len(words.lengths)), fill_value=unseen).to_numpy(),
        }
    )


def previous_occurrence(ids: np.ndarray) -> np.ndarray:
    """For each position, the index of the same id's previous occurrence (-1 if none)."""
    order = np.argsort(ids, kind="stable")  # positions grouped by word, in text order within a word
    out = np.full(len(ids), -1, dtype=np.int64)
    same = ids[order[1:]] == ids[order[:-1]]
    out[order[1:][same]] = order[:-1][same]
    return out


def moving_ttr(words: EssayWords, window: int) -> np.ndarray:
    """Mean distinct-word share over every ``window``-word window of each essay, in O(n): word j is new within
    the window starting at i exactly when its previous occurrence lies before i, so it counts for the starts
    max(prev, j - window) + 1 .. j. Essays of at most ``window`` words: their type-token ratio."""
    n = words.lengths[words.essay]
    first = np.maximum(words.previous, words.position - window) + 1
    last = np.minimum(words.position, n - window)
    windows = words.per_essay(np.clip(last - first + 1, 0, None))
    short = words.lengths <= window
    spans = np.maximum(words.lengths - window + 1, 1) * window
    return np.where(short, words.distinct / words.n, windows / spans)


def diversity(_texts: pd.Series, words: EssayWords, cfg: StyleConfig) -> pd.DataFrame:
    once = np.bincount(words.keys)[words.keys] == 1
    mean = words.per_essay(words.chars) / words.n
    spread = np.sqrt(words.per_essay((words.chars - mean[words.essay]) ** 2) / words.n)
    return pd.DataFrame(
        {
            "div_ttr": words.distinct / words.n,
            "div_hapax": words.per_essay(once) / words.n,
            "div_mattr": moving_ttr(words, cfg.mattr_window),
            "div_word_len_std": spread,
        }
    )


def repeated_shares(words: EssayWords, orders: Sequence[int]) -> dict[int, np.ndarray]:
    """Per order n, each essay's share of word n-grams that repeat an earlier one of the essay (0 for essays
    shorter than n). The n-gram starting at word i is coded by factorising (code of its (n-1)-gram, next word)
    pairs, starting from the word's key within its essay: codes are per essay and stay below the word count."""
    shares, code = {}, words.keys
    width = len(words.vocabulary) + 1
    for n in range(2, max(orders, default=1) + 1):
        code = pd.factorize(code[:-1] * width + words.ids[n - 1 :])[0].astype(np.int64) if len(code) > 1 else code[:0]
        start = np.arange(len(code))
        # n-grams running into the next essay are left out; they start after every whole n-gram of the essay,
        # so a code they share is counted at its earlier, whole occurrence
        whole = words.position[start] <= words.lengths[words.essay[start]] - n
        distinct = np.bincount(words.essay[start][whole & first_appearances(code)], minlength=len(words.lengths))
        grams = np.maximum(words.lengths - n + 1, 0)
        if n in orders:
            shares[n] = np.where(grams > 0, 1 - distinct / np.maximum(grams, 1), 0.0)
    return shares


def repetition(texts: pd.Series, words: EssayWords, cfg: StyleConfig) -> pd.DataFrame:
    shares = repeated_shares(words, (2, 3, 4))
    gap = words.position - words.previous
    local = (words.chars >= cfg.content_min_chars) & (words.previous >= 0) & (gap <= cfg.repeat_window)
    sentences = [[s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()] for text in texts]
    raw = [text.encode("utf-8") for text in texts]
    return pd.DataFrame(
        {
            "rep_2gram": shares[2],
            "rep_3gram": shares[3],
            "rep_4gram": shares[4],
            "rep_local": words.per_essay(local) / words.n,
            "rep_sentence": [1 - len(set(s)) / max(len(s), 1) for s in sentences],
            "rep_zlib": [len(zlib.compress(r, 9)) / max(len(r), 1) for r in raw],
        }
    )


def rhythm(texts: pd.Series, _words: EssayWords, _cfg: StyleConfig) -> pd.DataFrame:
    rows = []
    for text in texts:
        lengths = np.array([len(s.split()) for s in SENTENCE_END.split(text) if s.strip()], dtype=float)
        if not len(lengths):
            lengths = np.zeros(1)
        mean, std = lengths.mean(), lengths.std()
        rows.append((mean, std, std / max(mean, 1.0)))
    return pd.DataFrame(rows, columns=["rhy_sentence_mean", "rhy_sentence_std", "rhy_sentence_cv"])


def typography(texts: pd.Series, words: EssayWords, _cfg: StyleConfig) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "typ_no_space_after_punct": texts.str.count(r"[a-z][.,][A-Za-z]") / words.n,
            "typ_double_space": texts.str.count("  ") / words.n,
            "typ_leading_space": texts.str.match(r"\s").astype(float),
        }
    )


def punctuation(texts: pd.Series, words: EssayWords, cfg: StyleConfig) -> pd.DataFrame:
    marks = sorted(cfg.marks.items())  # fixed column order, however the config's mapping is ordered
    return pd.DataFrame({f"pun_{name}": texts.str.count(re.escape(mark)) / words.n for mark, name in marks})


GROUPS: dict[str, Callable[[pd.Series, EssayWords, StyleConfig], pd.DataFrame]] = {
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
    words = EssayWords.of(texts.tolist())  # split once, shared by the groups
    frames = [GROUPS[g](texts, words, cfg).reset_index(drop=True) for g in selected_groups(groups)]
    return pd.concat(frames, axis=1) if frames else pd.DataFrame(index=texts.index)


class StyleMemo:
    """``style_features`` that computes each distinct essay once: for a run that scores the same essays many
    times (every generalization split re-reads the training essays). Rows equal a direct computation.

    With ``cache_dir`` the rows also persist, keyed by each text's digest, in one file per feature definition
    (``style_key``): a blend after evaluate, a second blend, or one after training warmed it (``train_fold
    --jobs``, on a core the models left free) computes only essays it has not seen."""

    def __init__(
        self, groups: bool | Sequence[str] | None, cfg: StyleConfig, cache_dir: Path | None = None, jobs: int = 0
    ) -> None:
        self.groups, self.cfg, self.jobs = groups, cfg, jobs
        self.path = None if cache_dir is None else cache_dir / STYLE_CACHE.format(key=style_key(groups, cfg))
        self.from_cache = 0  # essays whose rows came from the file rather than being computed
        self._stored: dict[bytes, np.ndarray] | None = None  # the file's rows by digest, read at the first need
        self._rows: dict[str, np.ndarray] = {}
        self._columns: list[str] | None = None

    def __call__(self, texts: pd.Series) -> pd.DataFrame:
        texts = texts.astype(str).reset_index(drop=True)
        new = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if new or self._columns is None:
            self._add(new)
        assert self._columns is not None
        values = np.array([self._rows[t] for t in texts]).reshape(len(texts), len(self._columns))
        return pd.DataFrame(values, columns=self._columns)

    def _add(self, new: list[str]) -> None:
        if self._columns is None:
            self._columns = list(style_features(pd.Series([], dtype=str), self.groups, self.cfg, 1).columns)
        if self._stored is None:
            self._stored = self._read()
        stored = self._stored
        digests = [text_digest(t) for t in new]
        missing = [t for t, d in zip(new, digests, strict=True) if d not in stored]
        computed = style_features(pd.Series(missing, dtype=str), self.groups, self.cfg, self.jobs)
        made = dict(zip(missing, computed.to_numpy(), strict=True))
        self.from_cache += len(new) - len(missing)
        self._rows.update((t, made[t] if t in made else stored[d]) for t, d in zip(new, digests, strict=True))
        if self.path is not None and missing:
            stored.update((d, made[t]) for t, d in zip(new, digests, strict=True) if t in made)
            self._write(stored)

    def _read(self) -> dict[bytes, np.ndarray]:
        """The cache file's rows by digest: none without a file, or for one that does not read back whole with
        these columns (a warning: it is rebuilt)."""
        if self.path is None or not self.path.is_file():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as arrays:
                digests, values, columns = arrays["digests"], arrays["values"], arrays["columns"].tolist()
            if columns != self._columns:
                raise ValueError(f"its columns are not {self._columns}")
            if digests.shape != (len(values), DIGEST_BYTES) or values.shape != (len(digests), len(columns)):
                raise ValueError("its arrays do not match in shape")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            console.warn(f"{self.path}: style cache unreadable ({err}); recomputing it")
            return {}
        blob = digests.tobytes()
        keys = [blob[i : i + DIGEST_BYTES] for i in range(0, len(blob), DIGEST_BYTES)]
        return dict(zip(keys, values, strict=True))

    def _write(self, rows: dict[bytes, np.ndarray]) -> None:
        assert self.path is not None and self._columns is not None
        digests = np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), DIGEST_BYTES)
        values = np.array(list(rows.values()), dtype=float).reshape(len(rows), len(self._columns))
        try:
            with atomic.atomic_path(self.path) as tmp, tmp.open("wb") as handle:  # a file object: no ".npz" added
                np.savez(handle, digests=digests, values=values, columns=np.array(self._columns, dtype=str))
        except OSError as err:  # a cache only: the rows are computed, just not kept
            console.warn(f"{self.path}: style cache not written ({err})")


def text_digest(text: str) -> bytes:
    """What the style cache knows an essay by: 16 bytes of BLAKE2b of its UTF-8."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=DIGEST_BYTES).digest()


def style_key(groups: bool | Sequence[str] | None, cfg: StyleConfig) -> str:
    """The feature definition a cached row was computed under: groups, constants, this module's code and the
    word list and compressor it reads. Any change is another cache file, never a stale row."""
    spec = {
        "groups": selected_groups(groups),
        "cfg": asdict(cfg),
        "code": _code_digest(),
        "word_list": metadata.version("pyspellchecker"),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }
    return fingerprint(spec)


@cache
def _code_digest() -> str:
    return hashlib.sha1(Path(__file__).read_bytes()).hexdigest()

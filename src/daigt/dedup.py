"""Exact and near-duplicate essays: found with MinHash-LSH, kept in one fold (or dropped).

A copy of an essay in two folds leaks its label into the other fold's OOF score, so duplicates are
clustered before folds are drawn. Near duplicates are essays whose word-shingle sets have an estimated
Jaccard similarity at or above ``near_threshold``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

from daigt.data import PARENT_COLUMN, binary_labels
from daigt.schema import Invalid
from essayio.atomic import atomic_path

WORD = re.compile(r"\w+")
CACHE_VERSION = 1  # bump when the clustering itself changes, so old cached clusters are not reused
DEDUP_CACHE_GLOB = "dedup-*.npy"  # the cache files (in the folds folder)


@dataclass(frozen=True)
class DedupConfig:
    """``dedup:`` in configs/project.yaml: exact and near duplicates (MinHash), so no copy of an essay is on both
    sides of a fold."""

    action: Literal["group", "drop"] = "group"  # group: duplicates share a fold | drop: keep the first of each
    near_threshold: float | None = 0.8  # estimated Jaccard of word shingles; null: exact duplicates only
    shingle_words: int = 5  # words per shingle (MinHash near-duplicates)
    num_perm: int = 64  # MinHash permutations (more: a finer estimate)
    bands: int = 16  # LSH bands (num_perm must be a multiple)
    seed: int = 0  # the MinHash permutations' seed

    def check(self) -> None:
        if self.num_perm < 1 or self.bands < 1 or self.num_perm % self.bands:
            raise Invalid(f"num_perm ({self.num_perm}) must be a positive multiple of bands ({self.bands})")
        if self.near_threshold is not None and not 0 < self.near_threshold <= 1:
            raise Invalid(f"must lie in (0, 1], got {self.near_threshold}", "near_threshold")
        if self.shingle_words < 1:
            raise Invalid("must be >= 1", "shingle_words")


@dataclass(frozen=True)
class SiblingConfig:
    """``folds.siblings:``: an AI rewrite of a human text shares its content, not its words, so de-duplication
    misses the pair; siblings are joined into one cluster (one fold, both in or both out of the holdout)."""

    # content-word TF-IDF cosine at or above which an AI text and its most similar human text of the same
    # domain are siblings (0.5: the broad_train.csv README's figure for rewrites)
    min_similarity: float = 0.5

    def check(self) -> None:
        if not 0 < self.min_similarity <= 1:
            raise Invalid(f"must lie in (0, 1], got {self.min_similarity}", "min_similarity")


def link_siblings(frame: pd.DataFrame, cfg: SiblingConfig) -> np.ndarray:
    """``frame``'s ``dup_cluster`` with every AI text joined to its most similar human text of the same domain
    when their content-word cosine reaches ``min_similarity`` (renumbered groups)."""
    y = binary_labels(frame["label"])
    domains = frame["domain"].astype(str).to_numpy() if "domain" in frame else np.full(len(frame), "")
    partner = np.arange(len(frame))
    for domain in pd.unique(domains):
        member = domains == domain
        ai, human = np.flatnonzero(member & (y == 1)), np.flatnonzero(member & (y == 0))
        if not len(ai) or not len(human):
            continue
        vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, dtype=np.float32)
        try:
            rows = vectorizer.fit_transform(frame["text"].iloc[np.r_[ai, human]])
        except ValueError:  # no content words in this domain
            continue
        similarity = (rows[: len(ai)] @ rows[len(ai) :].T).tocsr()
        best = np.asarray(similarity.argmax(axis=1)).ravel()
        close = np.asarray(similarity.max(axis=1).todense()).ravel() >= cfg.min_similarity
        partner[ai[close]] = human[best[close]]
    clusters = frame["dup_cluster"] if "dup_cluster" in frame else frame["id"]
    linked = np.flatnonzero(partner != np.arange(len(frame)))
    pairs = list(zip(linked.tolist(), partner[linked].tolist(), strict=True))
    return connected_groups(clusters.to_numpy(), pairs=pairs)


def normalise(text: str) -> str:
    """Case, Unicode form and whitespace differences do not make a different essay."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def connected_groups(*labelings: Sequence[object], pairs: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """Group number per row: rows sharing a value in any labeling, or joined by a pair, share a group."""
    n = len(labelings[0]) if labelings else 1 + max(max(p) for p in pairs)
    left, right = [np.asarray([p[0] for p in pairs], dtype=int)], [np.asarray([p[1] for p in pairs], dtype=int)]
    for labeling in labelings:
        codes = pd.factorize(pd.Series(list(labeling), dtype=object))[0]
        left.append(np.arange(n))
        right.append(pd.Series(np.arange(n)).groupby(codes).transform("min").to_numpy())
    r, c = np.concatenate(left), np.concatenate(right)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    return pd.factorize(connected_components(graph, directed=False)[1])[0]


def _shingle_hashes(word_codes: np.ndarray, width: int) -> np.ndarray:
    """Hashes of every run of ``width`` consecutive words (one shingle for shorter texts)."""
    if len(word_codes) < width:
        return np.array([word_codes.sum() if len(word_codes) else 0], dtype=np.uint64)
    combined = np.zeros(len(word_codes) - width + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):  # polynomial rolling hash, wrapping mod 2**64 by design
        for j in range(width):
            combined = combined * np.uint64(1_000_003) + word_codes[j : len(word_codes) - width + 1 + j]
    return np.unique(combined)


def minhash_signatures(texts: Sequence[str], cfg: DedupConfig) -> np.ndarray:
    """One ``num_perm``-long MinHash signature per text (multiply-shift hashing, deterministic)."""
    rng = np.random.default_rng(cfg.seed)
    a = rng.integers(1, 2**63, size=cfg.num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=cfg.num_perm, dtype=np.uint64)
    words = [WORD.findall(t) for t in texts]
    # Word -> integer in one vectorised pass; scrambled so that nearby codes hash far apart.
    codes = pd.factorize(pd.Series([w for ws in words for w in ws], dtype=object))[0].astype(np.uint64)
    with np.errstate(over="ignore"):
        codes = (codes + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
    bounds = np.cumsum([0] + [len(ws) for ws in words])
    sigs = np.empty((len(texts), cfg.num_perm), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(len(texts)):
            shingles = _shingle_hashes(codes[bounds[i] : bounds[i + 1]], cfg.shingle_words)
            sigs[i] = ((shingles[:, None] * a[None, :] + b[None, :]) >> np.uint64(16)).min(axis=0)
    return sigs


def near_duplicate_pairs(sigs: np.ndarray, threshold: float, bands: int) -> list[tuple[int, int]]:
    """Candidate pairs from LSH banding, kept when their signature agreement reaches ``threshold``."""
    rows_per_band = sigs.shape[1] // bands
    seen: set[tuple[int, int]] = set()
    pairs = []
    for band in range(bands):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        block = np.ascontiguousarray(sigs[:, band * rows_per_band : (band + 1) * rows_per_band])
        for i, row in enumerate(block):
            buckets[row.tobytes()].append(i)
        for members in buckets.values():
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    pair = (members[x], members[y])
                    if pair in seen:
                        continue
                    seen.add(pair)
                    if np.mean(sigs[pair[0]] == sigs[pair[1]]) >= threshold:
                        pairs.append(pair)
    return pairs


def duplicate_clusters(texts: Sequence[str], cfg: DedupConfig) -> np.ndarray:
    """Cluster number per text; texts in one cluster are exact or near duplicates of each other."""
    normalised = [normalise(t) for t in texts]
    exact = pd.factorize(pd.Series(normalised, dtype=object))[0]
    if cfg.near_threshold is None:
        return exact
    pairs = near_duplicate_pairs(minhash_signatures(normalised, cfg), cfg.near_threshold, cfg.bands)
    return connected_groups(exact, pairs=pairs)


def cached_clusters(texts: Sequence[str], cfg: DedupConfig, cache_dir: Path | None) -> np.ndarray:
    """``duplicate_clusters``, kept in ``cache_dir`` under a hash of the texts and the config: every model of a
    run (``--jobs`` workers included) and the blend read the same training file, so MinHash runs once."""
    if cache_dir is None:
        return duplicate_clusters(texts, cfg)
    digest = hashlib.sha256(f"{CACHE_VERSION}{asdict(cfg)!r}".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    path = Path(cache_dir) / DEDUP_CACHE_GLOB.replace("*", digest.hexdigest()[:20])
    if path.is_file():
        try:
            cached = np.load(path)
            if cached.shape == (len(texts),):
                return cached
        except (OSError, ValueError, EOFError):  # a damaged cache is recomputed, never trusted or fatal
            pass
    clusters = duplicate_clusters(texts, cfg)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, clusters)
    return clusters


def deduplicate(
    frame: pd.DataFrame, cfg: DedupConfig, cache_dir: Path | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Add ``dup_cluster``; with ``action: drop`` keep only the first essay of each cluster."""
    clusters = cached_clusters(frame["text"].tolist(), cfg, cache_dir)
    if PARENT_COLUMN in frame:  # augmented copies share their parent's cluster, whatever MinHash says
        clusters = connected_groups(clusters, frame[PARENT_COLUMN].tolist())
    out = frame.assign(dup_cluster=clusters)
    sizes = out["dup_cluster"].map(out["dup_cluster"].value_counts())
    exact = pd.Series([normalise(t) for t in frame["text"]]).duplicated().sum()
    conflicting = 0
    if "label" in out and out["label"].notna().all():
        per_cluster = pd.Series(binary_labels(out["label"])).groupby(clusters).nunique()
        conflicting = int((per_cluster > 1).sum())
    report = {
        "rows": len(frame),
        "clusters_with_duplicates": int(out.loc[sizes > 1, "dup_cluster"].nunique()),
        "rows_in_duplicate_clusters": int((sizes > 1).sum()),
        "exact_duplicate_rows": int(exact),
        "clusters_with_conflicting_labels": conflicting,
        "dropped": 0,
    }
    if cfg.action == "drop":
        keep = ~out["dup_cluster"].duplicated()
        report["dropped"] = int((~keep).sum())
        out = out[keep].reset_index(drop=True)
    return out, report

"""Document-term n-gram counts in numpy, equal to sklearn's ``CountVectorizer`` for plain word and char analyzers.

sklearn builds every n-gram as a Python string and counts it in a dict: for char 1-5 grams over a few thousand
essays that is tens of millions of strings, most of the TF-IDF family's run time. Here each token (a word, or a
character) becomes an integer id, an n-gram becomes one int64 code (ids in base ``len(vocabulary)``), and
counting is a hash factorisation plus a sparse matrix build. Only the distinct n-grams become strings, once.

N-gram codes that would overflow int64 (large vocabularies, long n-grams: BPE token 5-grams) are kept exact by
renumbering the prefixes densely between steps. Configurations this does not cover (stop words, char_wb,
custom analyzers) return None and the caller uses sklearn.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

# Parameters this implementation reproduces; any other counting parameter (stop_words, vocabulary, binary, ...)
# falls back to sklearn.
SUPPORTED = {"analyzer", "ngram_range", "lowercase", "token_pattern", "dtype", "strip_accents"}
MAX_CODE = 2**62
TOKENIZE_CHUNK = 1000  # texts whose token strings are alive at once while they become ids


def ngram_range_of(params: Mapping[str, Any]) -> tuple[int, int]:
    """The n-gram range counting parameters ask for, as sklearn's tuple (its default: unigrams)."""
    low, high = params.get("ngram_range", (1, 1))
    return (low, high)


def counts_in_numpy(params: Mapping[str, Any]) -> bool:
    """Whether ``count_ngrams`` reproduces sklearn for these counting parameters (else it returns None)."""
    return params.get("analyzer", "word") in ("word", "char") and not set(params) - SUPPORTED


def count_ngrams(
    texts: Sequence[str],
    params: Mapping[str, Any],
    min_df: int = 1,
    table: dict[str, int] | None = None,
    fixed: bool = False,
    codes: bool = False,
) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """(counts, terms) with sklearn's column order (sorted terms), or None if sklearn must do it.

    ``min_df``: n-grams in fewer documents are dropped before they are spelled as strings or sorted (most BPE
    5-grams occur in one essay only: spelling them was most of the time and memory). A column kept here has the
    same counts as without it, so a later min_df over any subset of these documents prunes exactly the same.
    ``table``: the token table (token -> id) to count in; it grows by the tokens it lacks, unless ``fixed``:
    then n-grams with a token outside it are dropped (a model fitted on the table's essays knows none of them).
    ``codes``: name the n-grams by rank codes where ``rank_codes`` can (they mean the same for the same table)."""
    if not counts_in_numpy(params):
        return None
    analyzer = params.get("analyzer", "word")
    sk = CountVectorizer(**{k: v for k, v in params.items() if k != "dtype"})
    preprocess = sk.build_preprocessor()
    if analyzer == "char":
        collapse = sk._white_spaces.sub  # sklearn collapses runs of whitespace to one space before char n-grams

        def tokens_of(text: str) -> Sequence[str]:
            return collapse(" ", preprocess(text))  # a string is its own sequence of characters

        joiner = ""
    else:
        split = sk.build_tokenizer()

        def tokens_of(text: str) -> Sequence[str]:
            return split(preprocess(text))

        joiner = " "
    vocabulary: dict[str, int] = {} if table is None else table
    ids = token_ids(texts, tokens_of, vocabulary, fixed=fixed)
    tokens = np.array(list(vocabulary), dtype=object)
    counts, terms = count_token_ngrams(ids, tokens, ngram_range_of(params), joiner, min_df, codes=codes)
    return counts.astype(params.get("dtype", np.int64), copy=False), terms


def token_ids(
    texts: Sequence[str],
    tokens_of: Callable[[str], Sequence[str]],
    table: dict[str, int],
    distinct_tokens: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, ...]] | None = None,
    fixed: bool = False,
) -> list[np.ndarray]:
    """Each text's tokens as int32 ids into ``table``, which grows by the tokens it lacks (in order of first
    appearance), unless ``fixed``: then a token it lacks gets id -1. ``TOKENIZE_CHUNK`` texts at a time: their
    tokens become ids by one hash factorisation (C) and a dict lookup per *distinct* token, not per token, and
    only one chunk's token strings are alive at once.
    ``distinct_tokens(codes, distinct, lengths)`` may rewrite a chunk's tokens before they get ids."""
    id_of = (lambda t: table.get(t, -1)) if fixed else (lambda t: table.setdefault(t, len(table)))
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = [tokens_of(t) for t in texts[start : start + TOKENIZE_CHUNK]]
        lengths = np.fromiter(map(len, chunk), np.int64, len(chunk))
        flat = np.fromiter(itertools.chain.from_iterable(chunk), object, int(lengths.sum()))
        codes, distinct = pd.factorize(flat)
        if distinct_tokens is not None:
            codes, distinct, lengths = distinct_tokens(codes, distinct, lengths)
        known = np.fromiter(map(id_of, distinct), np.int32, len(distinct))
        ids.extend(np.split(known[codes], np.cumsum(lengths)[:-1]))
    return ids


def count_token_ngrams(
    ids: Sequence[np.ndarray],
    tokens: np.ndarray,
    ngram_range: tuple[int, int],
    joiner: str = " ",
    min_df: int = 1,
    codes: bool = True,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Float32 counts of the n-grams of documents given as token ids (``tokens[id]`` is the token's string),
    columns in the order of the ``joiner``-joined strings, and the terms.

    With ``codes`` the terms are int64 *rank codes* (``rank_codes``) when they fit, else strings: a code sorts
    like its string and costs 8 bytes where a Python string of a BPE 5-gram costs ~80, and a dict of them
    per fold ~100 more. Codes are only meaningful against the same ``tokens`` (a tokenizer's fixed vocabulary)."""
    low, high = ngram_range
    blocks, token_parts = _ngram_blocks(ids, len(tokens), low, high, min_df)
    counts = hstack_rows(blocks) if blocks else sp.csr_matrix((len(ids), 0), dtype=np.float32)
    coded = rank_codes(token_parts, tokens, high, joiner) if codes else None
    if coded is not None:
        order = np.argsort(coded, kind="stable")
        terms = coded[order]
    else:
        names = np.array([joiner.join(row) for parts in token_parts for row in tokens[parts]], dtype=object)
        order = term_order(names, tokens, token_parts, joiner)
        terms = names[order]
    new_column = np.empty(len(order), counts.indices.dtype)
    new_column[order] = np.arange(len(order))
    counts.indices = new_column[counts.indices]  # relabel columns, O(non-zeros), in the index dtype
    counts.has_sorted_indices = False
    counts.sort_indices()
    return counts, terms


def _ngram_blocks(
    ids: Sequence[np.ndarray], n_tokens: int, low: int, high: int, min_df: int
) -> tuple[list[sp.csr_matrix], list[np.ndarray]]:
    """Per n-gram order: a CSR block of counts (columns in order of first appearance) and each column's token
    ids, one row per column. An n-gram with an id of -1 (a token outside a fixed table) is not counted."""
    n_docs = len(ids)
    base = n_tokens + 1  # ids are shifted by one so that a leading id 0 still changes the code
    lengths = np.fromiter(map(len, ids), np.int64, n_docs)
    flat = np.concatenate(ids).astype(np.int64) + 1 if n_docs and lengths.sum() else np.zeros(0, np.int64)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int32), lengths)
    # tokens left in the document from each position (itself included): an n-gram starts where it is >= n
    remaining = np.arange(len(flat), dtype=np.int64)
    remaining -= np.repeat(np.cumsum(lengths) - lengths, lengths)
    remaining = (np.repeat(lengths, lengths) - remaining).astype(np.int32)
    unknown = flat == 0
    unknown_before = np.concatenate([[0], np.cumsum(unknown)]) if unknown.any() else None
    blocks, token_parts = [], []
    for n in range(low, high + 1):
        starts = np.flatnonzero(remaining >= n)  # an n-gram starts here and ends inside the same document
        if unknown_before is not None:  # ... and holds no unknown token
            starts = starts[unknown_before[starts + n] == unknown_before[starts]]
        code, bound = np.zeros(len(starts), np.int64), 1
        for j in range(n):
            if bound * base >= MAX_CODE:  # renumber the prefixes densely (exact): codes stay within int64
                code, prefixes = pd.factorize(code, sort=False)
                bound = max(1, len(prefixes))
            code = code * base + flat[starts + j]
            bound *= base
        column, unique = pd.factorize(code, sort=False)
        del code
        # starts run in document order, so each document's n-grams are one contiguous run: CSR directly,
        # float32 ones (counts stay exact to 2^24), duplicates summed in place
        indptr = np.zeros(n_docs + 1, np.int64)
        np.cumsum(np.bincount(doc_of[starts], minlength=n_docs), out=indptr[1:])
        index_dtype = np.int32 if len(column) < 2**31 else np.int64
        block = sp.csr_matrix(
            (np.ones(len(column), np.float32), column.astype(index_dtype), indptr.astype(index_dtype)),
            shape=(n_docs, len(unique)),
        )
        block.sum_duplicates()
        # factorize numbers n-grams in order of first appearance: a position is a first occurrence exactly
        # where the running maximum of the column ids grows (O(n), where np.unique would sort)
        running = np.maximum.accumulate(column)
        first = np.flatnonzero(np.concatenate([[True], running[1:] > running[:-1]])) if len(column) else running
        del running, column
        if min_df > 1:
            frequent = np.flatnonzero(block.getnnz(axis=0) >= min_df)  # duplicates summed: nnz = documents
            block, first = block[:, frequent], first[frequent]
        blocks.append(block)
        token_parts.append(flat[starts[first][:, None] + np.arange(n)] - 1)
    return blocks, token_parts


def token_ranks(tokens: np.ndarray) -> np.ndarray:
    """Each token's position among the tokens sorted as strings."""
    rank = np.empty(len(tokens), np.int64)
    rank[np.array(sorted(range(len(tokens)), key=tokens.__getitem__), dtype=np.int64)] = np.arange(len(tokens))
    return rank


def rank_codes(token_parts: Sequence[np.ndarray], tokens: np.ndarray, width: int, joiner: str) -> np.ndarray | None:
    """One int64 per n-gram that sorts as its joined string does: the tokens' string ranks + 1 as digits in base
    ``len(tokens) + 1``, zero-padded on the right to ``width`` tokens (a prefix sorts first). Exact when every
    token's characters sort after the joiner (then comparing joined strings is comparing token sequences);
    None when they do not or the codes would overflow."""
    base = len(tokens) + 1
    if base**width >= 2**63 or not joiner or not all(token and min(token) > joiner for token in tokens):
        return None
    rank = token_ranks(tokens)
    coded = [np.zeros(len(parts), np.int64) for parts in token_parts]
    for code, parts in zip(coded, token_parts, strict=True):
        for j in range(width):
            code *= base
            if j < parts.shape[1]:
                code += rank[parts[:, j]] + 1
    return np.concatenate(coded) if coded else np.zeros(0, np.int64)


def code_strings(codes: np.ndarray, tokens: np.ndarray, width: int, joiner: str = " ") -> list[str]:
    """The n-gram strings that ``rank_codes`` coded, in the same order."""
    by_rank = tokens[np.argsort(token_ranks(tokens))]
    base = len(tokens) + 1
    digits = [(codes // base**p) % base for p in range(width - 1, -1, -1)]
    return [joiner.join(by_rank[d - 1] for d in row if d) for row in zip(*digits, strict=True)]


def term_order(names: np.ndarray, tokens: np.ndarray, token_parts: Sequence[np.ndarray], joiner: str) -> np.ndarray:
    """The permutation that sorts ``names`` (each the ``joiner``-join of a row of ``token_parts``) as strings.

    Sorting millions of strings in Python was a fifth of the counting time at 10^4 essays. When every token's
    characters sort after the joiner, comparing two joined strings is comparing their token sequences, token
    by token, a shorter sequence first when it is a prefix: a numpy lexsort of the tokens' string ranks, with
    -1 padding the shorter n-grams. Otherwise (a token pattern that keeps control characters) Python sorts."""
    if joiner and not all(token and min(token) > joiner for token in tokens):
        listed = names.tolist()
        return np.array(sorted(range(len(listed)), key=listed.__getitem__), dtype=np.int64)
    rank = token_ranks(tokens)
    width = max((p.shape[1] for p in token_parts), default=0)
    ranks = np.full((len(names), width), -1, np.int32)
    row = 0
    for parts in token_parts:
        ranks[row : row + len(parts), : parts.shape[1]] = rank[parts]
        row += len(parts)
    return np.lexsort(ranks.T[::-1]) if width else np.arange(len(names))


def hstack_rows(blocks: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
    """Side-by-side CSR blocks (same rows) as one CSR, written straight into the output arrays: scipy's
    ``hstack`` of CSR goes through COO, ~40 bytes per non-zero of transient memory at 10^8 non-zeros.
    Each row holds its blocks' entries in block order, so the columns within a row stay sorted."""
    n_rows = blocks[0].shape[0]
    row_nnz = [np.diff(b.indptr) for b in blocks]
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.sum(row_nnz, axis=0), out=indptr[1:])
    index_dtype = np.int32 if sum(b.shape[1] for b in blocks) < 2**31 and indptr[-1] < 2**31 else np.int64
    indices = np.empty(indptr[-1], index_dtype)
    data = np.empty(indptr[-1], np.result_type(*(b.dtype for b in blocks)))
    row_start, column_offset = indptr[:-1].copy(), 0  # where the next block's entries go, row by row
    for block, nnz in zip(blocks, row_nnz, strict=True):
        destination = np.arange(block.nnz, dtype=np.int64)  # entry j of row r goes to row_start[r] + j - indptr[r]
        destination += np.repeat(row_start - block.indptr[:-1], nnz)
        indices[destination] = block.indices + column_offset
        data[destination] = block.data
        row_start += nnz
        column_offset += block.shape[1]
    return sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=(n_rows, column_offset))

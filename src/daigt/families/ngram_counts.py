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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

# Parameters this implementation reproduces; any other counting parameter (stop_words, vocabulary, binary, ...)
# falls back to sklearn.
SUPPORTED = {"analyzer", "ngram_range", "lowercase", "token_pattern", "dtype", "strip_accents"}
MAX_CODE = 2**62


def count_ngrams(
    texts: Sequence[str], params: Mapping[str, Any], min_df: int = 1
) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """(counts, terms) with sklearn's column order (sorted terms), or None if sklearn must do it.

    ``min_df``: n-grams in fewer documents are dropped before they are spelled as strings or sorted (most BPE
    5-grams occur in one essay only: spelling them was most of the time and memory). A column kept here has the
    same counts as without it, so a later min_df over any subset of these documents prunes exactly the same."""
    analyzer = params.get("analyzer", "word")
    if analyzer not in ("word", "char") or set(params) - SUPPORTED:
        return None
    sk = CountVectorizer(**{k: v for k, v in params.items() if k != "dtype"})
    preprocess = sk.build_preprocessor()
    if analyzer == "char":
        tokenize = sk._white_spaces.sub  # sklearn collapses runs of whitespace to one space before char n-grams
        docs = [list(tokenize(" ", preprocess(t))) for t in texts]
        joiner = ""
    else:
        split = sk.build_tokenizer()
        docs = [split(preprocess(t)) for t in texts]
        joiner = " "
    low, high = params.get("ngram_range", (1, 1))
    vocabulary: dict[str, int] = {}
    ids = [
        np.fromiter((vocabulary.setdefault(tok, len(vocabulary)) for tok in doc), np.int64, len(doc)) for doc in docs
    ]
    base = len(vocabulary) + 1  # ids are shifted by one so that a leading id 0 still changes the code
    lengths = np.fromiter(map(len, ids), np.int64, len(ids))
    flat = np.concatenate(ids) + 1 if ids else np.zeros(0, np.int64)
    doc_of = np.repeat(np.arange(len(ids)), lengths)
    remaining = np.concatenate([np.arange(n, 0, -1) for n in lengths]) if len(flat) else np.zeros(0, np.int64)
    tokens = np.array(list(vocabulary), dtype=object)
    blocks, terms = [], []
    for n in range(low, high + 1):
        starts = np.flatnonzero(remaining >= n)  # an n-gram starts here and ends inside the same document
        code, bound = np.zeros(len(starts), np.int64), 1
        for j in range(n):
            if bound * base >= MAX_CODE:  # renumber the prefixes densely (exact): codes stay within int64
                code, prefixes = pd.factorize(code, sort=False)
                bound = max(1, len(prefixes))
            code = code * base + flat[starts + j]
            bound *= base
        column, unique = pd.factorize(code, sort=False)
        block = sp.csr_matrix(
            (np.ones(len(code)), (doc_of[starts], column)), shape=(len(ids), len(unique)), dtype=np.float64
        )
        _, first = np.unique(column, return_index=True)  # one occurrence of each distinct n-gram spells it
        if min_df > 1:
            frequent = np.flatnonzero(block.getnnz(axis=0) >= min_df)  # duplicates summed: nnz = documents
            block, first = block[:, frequent], first[frequent]
        blocks.append(block)
        parts = flat[starts[first][:, None] + np.arange(n)] - 1
        terms.append([joiner.join(row) for row in tokens[parts]] if len(first) else [])
    counts = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((len(ids), 0))
    names = np.array([t for block in terms for t in block], dtype=object)
    listed = names.tolist()  # Python's sort of a str list is ~2x numpy's argsort of an object array
    order = np.array(sorted(range(len(listed)), key=listed.__getitem__), dtype=np.int64)
    new_column = np.empty(len(order), np.int64)
    new_column[order] = np.arange(len(order))
    counts.indices = new_column[counts.indices].astype(counts.indices.dtype)  # relabel columns, O(non-zeros)
    counts.has_sorted_indices = False
    counts.sort_indices()
    return counts.astype(params.get("dtype", np.int64)), names[order]

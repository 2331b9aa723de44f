"""Views of a text that keep how it is written and drop what it is about.

``function_word_view`` is the TF-IDF family's function-word view and the style space of the shift score
(shift.py ``view: function_words``): an essay on a new prompt reads the same in it as one on a known prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

LETTER_RUNS = re.compile(r"([A-Za-z]+)")  # captured: re.split keeps them as the odd pieces
FUNCTION_WORDS = frozenset(ENGLISH_STOP_WORDS) | {"i"}


def _word_shape(word: str) -> str:
    return word if word.lower() in FUNCTION_WORDS else ("W" if word[0].isupper() else "w")


_SHAPES: dict[str, str] = {}  # letter run -> what the view makes of it: one dict lookup per word after the first
SHAPES_KEPT = 500_000  # distinct letter runs remembered (~60 MB); the memo starts over beyond that


def function_word_view(text: str) -> str:
    """Keep function words (sklearn's English stop-word list, plus "i") and punctuation; every other word
    becomes its case shape ("W" or "w"). N-grams of what is left describe syntax and punctuation habits
    independent of topic ("text distortion", Stamatatos 2013), a view the plain n-gram models do not have.
    Its vectorizer needs a token_pattern that keeps one-letter tokens (sklearn's default drops "w").
    The text is split at letter runs and each run looked up in a memo: ~1.5x a regex substitution per word."""
    pieces = LETTER_RUNS.split(text)  # odd pieces are the letter runs
    if len(_SHAPES) > SHAPES_KEPT:
        _SHAPES.clear()
    pieces[1::2] = [_SHAPES[w] if w in _SHAPES else _SHAPES.setdefault(w, _word_shape(w)) for w in pieces[1::2]]
    return "".join(pieces)


# the views a model config may name (``text_view:`` of the tfidf and ngram_lm families); None: the text as it is
TEXT_VIEWS: dict[str, Callable[[str], str] | None] = {"raw": None, "function_words": function_word_view}

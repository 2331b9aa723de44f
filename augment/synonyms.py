"""WordNet synonym swaps, offline: NLTK reads the Debian WordNet files that set-up copies into NLTK_DATA.

No POS tagger (its model cannot be fetched offline): a word's synonyms come from its most common synsets of
any part of speech, and only single-word lemmas are used. Stop words and capitalised words inside a
sentence (likely proper nouns) are never replaced.
"""

from __future__ import annotations

import os
import random
import re
from functools import lru_cache
from pathlib import Path

from augment.errors import AugmentError
from augment.ops import TOKENS

NLTK_DATA = Path(os.environ.get("DAIGT_NLTK_DATA", Path(__file__).resolve().parents[1] / ".venv" / "nltk_data"))
WORD = re.compile(r"^([^A-Za-z]*)([A-Za-z]+)([^A-Za-z]*)$")
_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs
them themselves then there these they this those through to too under until up very was we were what when
where which while who whom why will with would you your yours yourself yourselves also many much get got make
made one two people thing things think way
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


class WordNetMissing(AugmentError):
    pass


@lru_cache(maxsize=1)
def _wordnet():
    if not (NLTK_DATA / "corpora" / "wordnet" / "lexnames").is_file():
        raise WordNetMissing(
            f"WordNet is not in {NLTK_DATA}/corpora/wordnet: run `make setup` (apt wordnet-base + "
            "python -m augment.resources), or set DAIGT_NLTK_DATA to an NLTK data folder that has it"
        )
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    warnings.filterwarnings("ignore", message="The multilingual functions")
    return WordNetCorpusReader(str(NLTK_DATA / "corpora" / "wordnet"), None)


@lru_cache(maxsize=100_000)
def synonyms(word: str) -> tuple[str, ...]:
    out: list[str] = []
    wordnet = _wordnet()
    if any(wordnet.morphy(word, pos) not in (None, word) for pos in "nvar"):
        return ()  # an inflected form ("cars", "fewer"): a lemma would break the grammar
    for synset in wordnet.synsets(word)[:3]:
        for lemma in synset.lemma_names():
            if "_" not in lemma and lemma.lower() != word and lemma.isalpha() and lemma.lower() not in out:
                out.append(lemma.lower())
    return tuple(out)


def synonym(text: str, rng: random.Random, intensity: float) -> str:
    """Replace about ``intensity`` of the content words with a WordNet synonym."""
    parts = TOKENS.split(text)
    sentence_start = True
    for i in range(0, len(parts), 2):
        token = parts[i]
        match = WORD.match(token)
        if match and rng.random() < intensity:
            pre, word, post = match.groups()
            proper_noun = word[0].isupper() and not sentence_start
            if word.lower() not in STOP_WORDS and len(word) > 2 and not proper_noun:
                options = synonyms(word.lower())
                if options:
                    new = rng.choice(options)
                    parts[i] = pre + (new.capitalize() if word[0].isupper() else new) + post
        if token:
            sentence_start = token.endswith((".", "!", "?"))
    return "".join(parts)

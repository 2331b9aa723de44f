"""The inverse of the attacks: normalise Unicode and fix spelling before a model sees the text.

``normalise`` undoes invisible characters, homoglyphs, compatibility forms and whitespace noise exactly;
``spell_correct`` (pyspellchecker, offline English frequency list) fixes words it does not know, keeping
case and punctuation. Applied at train and predict time alike when a model config asks for it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from augment.lexicon import HOMOGLYPH_TO_LATIN, ZERO_WIDTH

_INVISIBLE = re.compile("[" + "".join(ZERO_WIDTH) + "\u00ad\u200e\u200f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?])")
# Capital look-alikes too (Cyrillic/Greek А В Е К М Н О Р С Т Х ...), which the attacks may not even produce.
_CAPITALS = dict(zip("АВЕКМНОРСТХІЈЅΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEKMHOPCTXIJSABEZHIKMNOPTYX", strict=True))
_HOMOGLYPHS = str.maketrans(HOMOGLYPH_TO_LATIN | _CAPITALS)
_WORD = re.compile(r"[A-Za-z]+")


def normalise(text: str) -> str:
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    text = _CONTROL.sub(" ", text.translate(_HOMOGLYPHS))
    return _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", text))


@lru_cache(maxsize=1)
def _checker():
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


@lru_cache(maxsize=200_000)
def _correct_word(word: str) -> str:
    lower = word.lower()
    checker = _checker()
    if len(lower) < 3 or lower in checker:
        return word
    fixed = checker.correction(lower) or lower
    if word.isupper():
        return fixed.upper()
    return fixed.capitalize() if word[0].isupper() else fixed


def spell_correct(text: str) -> str:
    return _WORD.sub(lambda m: _correct_word(m.group(0)), text)


def deobfuscate(text: str, spelling: bool = True) -> str:
    text = normalise(text)
    return spell_correct(text) if spelling else text

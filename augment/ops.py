"""Text perturbations, each a pure function of (text, rng, intensity): the attacks hidden test essays saw.

Word-level ops work on whitespace tokens and leave the whitespace (hence paragraphs) alone; char-level ops
touch letters inside words only, so line breaks and paragraph counts survive. ``intensity`` is the share of
eligible units (words or sentences) an op changes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from augment.lexicon import HOMOGLYPHS, KEYBOARD_NEIGHBOURS, OCR_CONFUSIONS, ZERO_WIDTH

Op = Callable[[str, random.Random, float], str]
TOKENS = re.compile(r"(\s+)")
SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)")
PARAGRAPH = re.compile(r"(\n\s*\n)")
PUNCT = re.compile(r"[,.;:!?]")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _map_words(text: str, rng: random.Random, intensity: float, change: Callable[[str, random.Random], str]) -> str:
    """Apply ``change`` to about ``intensity`` of the words (whitespace-separated tokens)."""
    parts = TOKENS.split(text)
    for i in range(0, len(parts), 2):  # even indices are words, odd ones the whitespace between them
        if parts[i] and rng.random() < intensity:
            parts[i] = change(parts[i], rng)
    return "".join(parts)


def _letter_positions(word: str) -> list[int]:
    return [i for i, c in enumerate(word) if c.isalpha()]


def _typo(word: str, rng: random.Random) -> str:
    positions = _letter_positions(word)
    if not positions:
        return word
    i = rng.choice(positions)
    kind = rng.randrange(4)
    if kind == 0:  # insert
        return word[:i] + rng.choice(LETTERS) + word[i:]
    if kind == 1 and len(positions) > 1:  # delete
        return word[:i] + word[i + 1 :]
    if kind == 2 and i + 1 < len(word) and word[i + 1].isalpha():  # swap with the next letter
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice(LETTERS) + word[i + 1 :]  # substitute


def _from_table(table: dict[str, str] | dict[str, list[str]]) -> Callable[[str, random.Random], str]:
    def change(word: str, rng: random.Random) -> str:
        hits = [i for i, c in enumerate(word) if c.lower() in table]
        if not hits:
            return word
        i = rng.choice(hits)
        options = table[word[i].lower()]
        new = rng.choice(options) if isinstance(options, list) else options
        return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1 :]

    return change


def char_typo(text: str, rng: random.Random, intensity: float) -> str:
    """One insert / delete / swap / substitute in about ``intensity`` of the words."""
    return _map_words(text, rng, intensity, _typo)


def keyboard(text: str, rng: random.Random, intensity: float) -> str:
    """A QWERTY-neighbour slip in about ``intensity`` of the words."""
    return _map_words(text, rng, intensity, _from_table(KEYBOARD_NEIGHBOURS))


def ocr(text: str, rng: random.Random, intensity: float) -> str:
    """OCR-style confusions (o/0, l/1, rn/m, ...) in about ``intensity`` of the words."""
    return _map_words(text, rng, intensity, _from_table(OCR_CONFUSIONS))


def homoglyph(text: str, rng: random.Random, intensity: float) -> str:
    """Latin letters swapped for Cyrillic/Greek look-alikes: same on screen, different bytes."""
    return _map_words(text, rng, intensity, _from_table(HOMOGLYPHS))


def zero_width(text: str, rng: random.Random, intensity: float) -> str:
    """Invisible characters inside words (breaks tokenizers, invisible to a reader)."""

    def change(word: str, rng: random.Random) -> str:
        i = rng.randrange(1, len(word)) if len(word) > 1 else 1
        return word[:i] + rng.choice(ZERO_WIDTH) + word[i:]

    return _map_words(text, rng, intensity, change)


def word_delete(text: str, rng: random.Random, intensity: float) -> str:
    parts = TOKENS.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0 and part and rng.random() < intensity:
            if out and out[-1].isspace() and "\n" not in out[-1]:
                out.pop()  # take the preceding space with the word, keep line breaks
            continue
        out.append(part)
    return "".join(out) or text


def word_duplicate(text: str, rng: random.Random, intensity: float) -> str:
    return _map_words(text, rng, intensity, lambda w, _: f"{w} {w}")


def punct_drop(text: str, rng: random.Random, intensity: float) -> str:
    return PUNCT.sub(lambda m: "" if rng.random() < intensity else m.group(0), text)


def punct_double(text: str, rng: random.Random, intensity: float) -> str:
    return PUNCT.sub(lambda m: m.group(0) * 2 if rng.random() < intensity else m.group(0), text)


def whitespace(text: str, rng: random.Random, intensity: float) -> str:
    """Doubled spaces, a space before punctuation, trailing spaces: keyboard noise a reader ignores."""
    parts = TOKENS.split(text)
    for i in range(1, len(parts), 2):
        if rng.random() < intensity and "\n" not in parts[i]:
            parts[i] = parts[i] + " " * rng.randint(1, 2)
    return PUNCT.sub(lambda m: " " + m.group(0) if rng.random() < intensity / 4 else m.group(0), "".join(parts))


def case_flip(text: str, rng: random.Random, intensity: float) -> str:
    """Random case changes of words: upper, lower, title or swapped."""
    styles = (str.upper, str.lower, str.title, str.swapcase)
    return _map_words(text, rng, intensity, lambda w, r: r.choice(styles)(w))


def lowercase_all(text: str, rng: random.Random, intensity: float) -> str:
    return text.lower()


def lower_sentence_start(text: str, rng: random.Random, intensity: float) -> str:
    """Sentence-initial capitals lowered in about ``intensity`` of the sentences (a student habit)."""

    def lower_first(sentence: str) -> str:
        for i, c in enumerate(sentence):
            if c.isalpha():
                return sentence[:i] + c.lower() + sentence[i + 1 :] if rng.random() < intensity else sentence
        return sentence

    return "".join(lower_first(p) if i % 2 == 0 else p for i, p in enumerate(SENTENCE_END.split(text)))


def shout(text: str, rng: random.Random, intensity: float) -> str:
    """Whole sentences in capitals."""
    parts = SENTENCE_END.split(text)
    return "".join(p.upper() if i % 2 == 0 and rng.random() < intensity else p for i, p in enumerate(parts))


def _per_paragraph(text: str, change: Callable[[list[str]], list[str]]) -> str:
    paragraphs = PARAGRAPH.split(text)
    for i in range(0, len(paragraphs), 2):
        pieces = SENTENCE_END.split(paragraphs[i])
        sentences, gaps = pieces[0::2], pieces[1::2]
        if len(sentences) > 1:
            sentences = change(sentences)
            paragraphs[i] = "".join(s + (gaps[j] if j < len(gaps) else "") for j, s in enumerate(sentences))
    return "".join(paragraphs)


def sentence_swap(text: str, rng: random.Random, intensity: float) -> str:
    """Swap adjacent sentences inside a paragraph (about ``intensity`` of the sentence pairs)."""

    def change(sentences: list[str]) -> list[str]:
        for j in range(len(sentences) - 1):
            if rng.random() < intensity:
                sentences[j], sentences[j + 1] = sentences[j + 1], sentences[j]
        return sentences

    return _per_paragraph(text, change)


def sentence_shuffle(text: str, rng: random.Random, intensity: float) -> str:
    """Shuffle the sentences of about ``intensity`` of the paragraphs."""

    def change(sentences: list[str]) -> list[str]:
        if rng.random() < intensity:
            rng.shuffle(sentences)
        return sentences

    return _per_paragraph(text, change)


OPS: dict[str, Op] = {
    "char_typo": char_typo,
    "keyboard": keyboard,
    "ocr": ocr,
    "homoglyph": homoglyph,
    "zero_width": zero_width,
    "word_delete": word_delete,
    "word_duplicate": word_duplicate,
    "punct_drop": punct_drop,
    "punct_double": punct_double,
    "whitespace": whitespace,
    "case_flip": case_flip,
    "lowercase_all": lowercase_all,
    "lower_sentence_start": lower_sentence_start,
    "shout": shout,
    "sentence_swap": sentence_swap,
    "sentence_shuffle": sentence_shuffle,
}

"""Character tables for the char-level ops: QWERTY neighbours, OCR confusions, homoglyphs, invisible chars."""

from __future__ import annotations

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard() -> dict[str, list[str]]:
    where = {c: (r, i) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    out: dict[str, list[str]] = {}
    for c, (r, i) in where.items():
        near = [
            _ROWS[rr][ii]
            for rr in (r - 1, r, r + 1)
            for ii in (i - 1, i, i + 1)
            if 0 <= rr < len(_ROWS) and 0 <= ii < len(_ROWS[rr]) and (rr, ii) != (r, i)
        ]
        out[c] = near
    return out


KEYBOARD_NEIGHBOURS: dict[str, list[str]] = _keyboard()
OCR_CONFUSIONS: dict[str, list[str]] = {
    "o": ["0"], "l": ["1", "I"], "i": ["1", "l"], "e": ["c"], "a": ["o"], "s": ["5"], "b": ["8", "6"],
    "g": ["9", "q"], "z": ["2"], "m": ["rn"], "n": ["ri"], "c": ["e"], "t": ["f"], "u": ["v"],
}  # fmt: skip
HOMOGLYPHS: dict[str, list[str]] = {
    "a": ["\u0430"], "c": ["\u0441"], "e": ["\u0435"], "i": ["\u0456"], "j": ["\u0458"], "o": ["\u043e", "\u03bf"],
    "p": ["\u0440"], "s": ["\u0455"], "x": ["\u0445"], "y": ["\u0443"], "h": ["\u04bb"], "k": ["\u03ba"],
}  # fmt: skip
ZERO_WIDTH: list[str] = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
# The reverse map the deobfuscator uses: every look-alike back to its Latin letter.
HOMOGLYPH_TO_LATIN: dict[str, str] = {g: latin for latin, glyphs in HOMOGLYPHS.items() for g in glyphs}

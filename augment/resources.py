"""Build the offline NLTK WordNet folder from Debian's WordNet files (run by scripts/setup.sh).

Debian's wordnet-base ships the WordNet 3.0 database in /usr/share/wordnet but not the ``lexnames`` file
NLTK's reader wants, and NLTK must not follow symlinks out of its data folder, so the files are copied.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from augment.synonyms import NLTK_DATA, STOP_WORDS
from essayio import console

DEBIAN_WORDNET = Path("/usr/share/wordnet")
_LEXNAMES_TEXT = """
adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition
noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object
noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape
noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition
verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession
verb.social verb.stative verb.weather adj.ppl
"""
LEXNAMES = _LEXNAMES_TEXT.split()
POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def build(target: Path = NLTK_DATA / "corpora" / "wordnet", source: Path = DEBIAN_WORDNET) -> Path:
    if not (source / "data.noun").is_file():
        raise SystemExit(f"{source}/data.noun not found: apt-get install wordnet-base wordnet-sense-index")
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            shutil.copyfile(path, target / path.name)  # copies, not links
    lines = [f"{i:02d}\t{name}\t{POS_NUMBER[name.split('.')[0]]}" for i, name in enumerate(LEXNAMES)]
    (target / "lexnames").write_text("\n".join(lines) + "\n")
    return target


def stopwords(target: Path = NLTK_DATA / "corpora" / "stopwords") -> Path:
    """NLTK's English stop-word corpus from our own list: textattack's constraints ask for it, offline."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "english").write_text("\n".join(sorted(STOP_WORDS)) + "\n")
    return target


if __name__ == "__main__":
    console.say(f"WordNet for NLTK: {build()}; stop words: {stopwords()}", aside=True)

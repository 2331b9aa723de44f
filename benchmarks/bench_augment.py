"""Augmentation throughput on 400-word essays, one process (= one core): each op, the default recipe, and
back-translation, against nlpaug's augmenters called naively in a loop on the same essays (same script).

    python benchmarks/bench_augment.py --train ../shared/data/train.csv --n 300 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from augment.recipe import ALL_OPS, Augmenter, Recipe, rng_for
from daigt.data import load_essays

ROOT = Path(__file__).resolve().parents[1]

WORDS = 400
NLPAUG_EQUIVALENT = {  # our op -> the nlpaug augmenter doing the same job
    "char_typo": ("char", "RandomCharAug", {"action": "substitute"}),
    "keyboard": ("char", "KeyboardAug", {}),
    "ocr": ("char", "OcrAug", {}),
    "word_delete": ("word", "RandomWordAug", {"action": "delete"}),
}


def essays_of_400_words(path: str, n: int) -> list[str]:
    texts = load_essays(path, role="train")["text"].sample(frac=1.0, random_state=0).tolist()
    out, pool = [], " ".join(texts).split(" ")
    for i in range(n):
        out.append(" ".join(pool[i * WORDS : (i + 1) * WORDS]))
    return out


def rate(fn: Callable[[], None], n: int, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append(n / (time.perf_counter() - started))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default="../shared/data/train.csv")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bt-n", type=int, default=40, help="essays for back-translation (slow engines)")
    args = parser.parse_args()
    texts = essays_of_400_words(args.train, args.n)
    ids = [str(i) for i in range(len(texts))]
    rows = []
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw

    ALL_OPS["synonym"](texts[0], rng_for(0, "warm", 0, "synonym"), 0.1)  # load WordNet outside the timing
    for op, fn in ALL_OPS.items():

        def run_op(fn: Callable = fn, op: str = op) -> None:
            for i, t in zip(ids, texts, strict=True):
                fn(t, rng_for(0, i, 1, op), 0.05)

        ours = rate(run_op, len(texts), args.repeats)
        baseline = None
        if op in NLPAUG_EQUIVALENT:
            module, name, kwargs = NLPAUG_EQUIVALENT[op]
            aug = getattr(nac if module == "char" else naw, name)(**kwargs)
            baseline = rate(lambda aug=aug: [aug.augment(t) for t in texts], len(texts), 1)
        rows.append((op, ours, baseline))
        print(f"{op:22s} {ours:8.0f} essays/s" + (f"   nlpaug {baseline:6.0f}" if baseline else ""), flush=True)
    default = Recipe.load(ROOT / "configs/augment/default.yaml")
    without_bt = Recipe(tuple(s for s in default.steps if s.op != "back_translation"), default.seed, "no-bt")
    recipe_rate = rate(lambda: Augmenter(without_bt).apply(ids, texts), len(texts), args.repeats)
    bt = Recipe.from_dict({"ops": [{"op": "back_translation", "engine": "apertium", "pivot": "spa"}]})
    bt_rate = rate(lambda: Augmenter(bt).apply(ids[: args.bt_n], texts[: args.bt_n]), args.bt_n, 1)
    full_rate = rate(lambda: Augmenter(default).apply(ids, texts), len(texts), 1)

    print(f"\n{len(texts)} essays of {WORDS} words, one process, median of {args.repeats}; intensity 0.05 per op")
    print("| op | ours essays/s | nlpaug essays/s | ratio |\n|---|---|---|---|")
    for op, ours, baseline in rows:
        ratio = f"x{ours / baseline:.1f}" if baseline else ""
        print(f"| {op} | {ours:.0f} | {baseline:.0f} | {ratio} |" if baseline else f"| {op} | {ours:.0f} | | |")
    print(f"| default recipe without back-translation | {recipe_rate:.0f} | | |")
    print(f"| back-translation alone (apertium, {args.bt_n} essays) | {bt_rate:.1f} | | |")
    print(f"| default recipe (back-translation fires on 10%) | {full_rate:.0f} | | |")


if __name__ == "__main__":
    main()

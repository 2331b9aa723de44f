"""Wall time and peak memory of the CPU pipeline: 5-fold TF-IDF training per model, then the blend.

Each stage runs as its own process (as a user runs it), into a fresh temporary artifacts/folds folder, so
nothing is reused between repeats. Prints one row per stage with the median over --repeats, and the ratio
of the shared-count TF-IDF path against fitting sklearn's TfidfVectorizer per fold in this same script.

    python benchmarks/bench_pipeline.py --train ../shared/data/train.csv --test ../shared/data/test_essays.csv

A competitor's iteration: ``--kaggle-test 5973`` makes a test file of Kaggle's size and ``--baseline`` times the
public one-fit TF-IDF notebook (word 3-5-grams, vocabulary from the test, naive Bayes + SGD) on the same files,
in this script, with its holdout AUC beside ours and the wall-time ratio. With ``--kaggle-test-from FILE`` the
test essays are drawn from FILE (e.g. ../shared/data/broad_train.csv): texts training never saw, the realistic
case, where the far-test rule turns the transductive steps off and the test shift is measured. Without it they
are the training essays with light typos (close to train, so every transductive step runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from workspace import ROOT, measured

from daigt.model_configs import load_model_config


def naive_tfidf_seconds(train_path: str, model: str) -> tuple[float, float]:
    """Baseline vs ours for the vectoriser alone: sklearn fit per fold, against prepare-once + per-fold fit."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer

    from daigt.text.ngram_tfidf import NgramTfidf

    texts = pd.read_csv(train_path)["text"].tolist()
    spec = load_model_config(model).config.params.vectorizer
    params = spec.kwargs()
    folds = [[t for i, t in enumerate(texts) if i % 5 != k] for k in range(5)]
    start = time.perf_counter()
    for fit_docs in folds:
        TfidfVectorizer(**params).fit(fit_docs).transform(texts)
    naive = time.perf_counter() - start
    start = time.perf_counter()
    features = NgramTfidf(spec)
    features.prepare(texts)
    for fit_docs in folds:
        features.fit(fit_docs)
        features.transform(texts)
    return naive, time.perf_counter() - start


def counting_seconds(train_path: str, test_path: str, model: str, repeats: int) -> tuple[float, float] | None:
    """Median seconds to count one model's n-grams over train+test: sklearn's CountVectorizer vs ngram_counts."""
    import pandas as pd
    from sklearn.feature_extraction.text import CountVectorizer

    from daigt.families import get_family
    from daigt.text.ngram_counts import count_ngrams

    config = load_model_config(model).config
    if config.family != "tfidf":
        return None
    family = get_family("tfidf")(config.params, seed=0)
    frame = pd.concat([pd.read_csv(train_path), pd.read_csv(test_path)])
    texts = family.texts(frame.assign(text=frame["text"].astype(str)))
    params = {**family.features.counting, "dtype": np.float64}
    if count_ngrams(texts[:10], params) is None:
        return None
    times: dict[str, list[float]] = {"sklearn": [], "numpy": []}
    for _ in range(repeats):  # alternate, so drift in machine load hits both alike
        start = time.perf_counter()
        CountVectorizer(**params).fit_transform(texts)
        times["sklearn"].append(time.perf_counter() - start)
        start = time.perf_counter()
        count_ngrams(texts, params)
        times["numpy"].append(time.perf_counter() - start)
    return statistics.median(times["sklearn"]), statistics.median(times["numpy"])


def kaggle_size_test(train_path: str, n: int, folder: Path) -> str:
    """A test file of ``n`` essays drawn from the training essays with light typos and sentence swaps (new ids,
    Kaggle's columns): as close to train as Kaggle's own test, so the transductive steps run as they would there."""
    import pandas as pd

    from augment.pipeline import augment_frame
    from augment.recipe import Recipe

    recipe_path = folder / "kaggle_test_recipe.yaml"
    ops = [{"op": "char_typo", "p": 0.5, "intensity": 0.03}, {"op": "sentence_swap", "p": 0.3, "intensity": 0.15}]
    recipe_path.write_text(yaml.safe_dump({"seed": 7, "ops": ops}))
    frame = pd.read_csv(train_path)
    copies = augment_frame(frame, Recipe.load(recipe_path), -(-n // len(frame)), progress=False)
    chosen = copies[copies["copy"] > 0].sample(n, random_state=0)
    return write_test(chosen["text"], folder / "test_kaggle_size.csv")


def drawn_test(source: str, n: int, folder: Path) -> str:
    """A test file of ``n`` texts drawn from ``source`` (new ids, Kaggle's columns): essays training never saw."""
    import pandas as pd

    frame = pd.read_csv(source)
    return write_test(frame.sample(min(n, len(frame)), random_state=0)["text"], folder / "test_drawn.csv")


def write_test(texts: Any, path: Path) -> str:
    """``texts`` as a test file in Kaggle's columns, with new ids."""
    import pandas as pd

    ids = [f"k{i:05d}" for i in range(len(texts))]
    pd.DataFrame({"id": ids, "prompt_id": 0, "text": list(texts)}).to_csv(path, index=False)
    return str(path)


def public_baseline(train_path: str, test_path: str, holdout_path: Path) -> tuple[float, float, float]:
    """The public one-fit notebook's recipe: word 3-5-gram TF-IDF whose vocabulary comes from the test essays,
    multinomial naive Bayes (0.3) + SGD modified Huber (0.7). Wall s, CPU s, and its AUC on our locked holdout
    (fitted on the other training essays, as ours)."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.naive_bayes import MultinomialNB

    from daigt.metrics import auc

    wall, cpu = time.perf_counter(), time.process_time()
    train, test = pd.read_csv(train_path), pd.read_csv(test_path)
    holdout_ids = set(pd.read_csv(holdout_path, dtype={"id": str})["id"])
    held = train["id"].astype(str).isin(holdout_ids).to_numpy()
    vectorizer = TfidfVectorizer(ngram_range=(3, 5), lowercase=False, sublinear_tf=True, strip_accents="unicode")
    vectorizer.fit(test["text"])
    x_train, x_test = vectorizer.transform(train["text"]), vectorizer.transform(test["text"])
    y = train["generated"].to_numpy()
    models = [(0.3, MultinomialNB(alpha=0.02)), (0.7, SGDClassifier(max_iter=8000, tol=1e-4, loss="modified_huber"))]
    for _, model in models:
        model.fit(x_train[~held], y[~held])
    score = lambda x: sum(w * m.predict_proba(x)[:, 1] for w, m in models)  # noqa: E731
    score(x_test)  # the submission
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, auc(y[held], score(x_train[held]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--models", nargs="+", default=None, help="default: 'models:' in configs/project.yaml")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--vectoriser-baseline", action="store_true", help="also time sklearn-per-fold vs ours")
    parser.add_argument("--counting-baseline", action="store_true", help="also time sklearn vs numpy n-gram counts")
    parser.add_argument("--evaluate", action="store_true", help="also time src/evaluate.py (LOSO + LOPO) after it")
    parser.add_argument(
        "--jobs", type=int, default=2, help="also time `--model all --jobs N` + blend, as make run (without --models)"
    )
    parser.add_argument("--kaggle-test", type=int, help="use a test file of this many essays made from --train")
    parser.add_argument("--kaggle-test-from", metavar="FILE", help="with --kaggle-test: draw the essays from FILE")
    parser.add_argument("--baseline", action="store_true", help="also time the public one-fit TF-IDF notebook")
    return parser.parse_args()


@dataclass
class Timings:
    """Every round's figures: (wall s, peak MiB) per stage, ours' holdout AUC, the public notebook's runs."""

    rows: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    ours_holdout: list[float] = field(default_factory=list)
    baseline: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, stage: str, wall: float, peak: float) -> None:
        self.rows.setdefault(stage, []).append((wall, peak))


def one_round(args: argparse.Namespace, models: list[str], tmp: str, timings: Timings) -> None:
    """Each model in a row, then blend; as make run (models side by side, then blend) on folds of its own;
    optionally the public notebook and evaluate, alternating with ours so drift in machine load hits both."""
    project = yaml.safe_load((ROOT / "configs/project.yaml").read_text())
    project["folds"]["path"] = f"{tmp}/folds.csv"
    project["holdout"]["path"] = f"{tmp}/holdout.csv"
    config = Path(tmp) / "project.yaml"
    config.write_text(yaml.safe_dump(project))
    common = ["--config", str(config), "--train", args.train, "--test", args.test, "--artifacts", f"{tmp}/a"]
    py = sys.executable
    total, highest = 0.0, 0.0
    for model in models:
        wall, peak = measured([py, "src/train_fold.py", "--fold", "all", "--model", model, "--no-progress", *common])
        timings.add(f"train 5 folds: {model}", wall, peak)
        total, highest = total + wall, max(highest, peak)
    blend_cmd = [py, "src/blend.py", *common, "--out", f"{tmp}/sub/submission.csv"]
    wall, peak = measured(blend_cmd)
    timings.add("blend (LightGBM stacker, 5 folds)", wall, peak)
    timings.add("whole pipeline, models in a row", total + wall, max(highest, peak))
    if args.jobs <= 1 or args.models is not None:
        return
    cold = {
        **project,
        "folds": {**project["folds"], "path": f"{tmp}/b_folds/folds.csv"},
        "holdout": {**project["holdout"], "path": f"{tmp}/b_folds/holdout.csv"},
    }
    cold_config = Path(tmp) / "project_b.yaml"  # own folds folder: nothing cached by the runs above
    cold_config.write_text(yaml.safe_dump(cold))
    side = ["--config", str(cold_config), *common[2:-1], f"{tmp}/b"]
    cmd = [py, "src/train_fold.py", "--fold", "all", "--model", "all", "--jobs", str(args.jobs)]
    train_wall, train_peak = measured([*cmd, "--no-progress", *side])
    blend_wall, blend_peak = measured([*blend_cmd[:2], *side, "--out", f"{tmp}/sub2/submission.csv"])
    timings.add(f"train all models, --jobs {args.jobs}", train_wall, train_peak)
    timings.add(f"whole pipeline, --jobs {args.jobs} (make run)", train_wall + blend_wall, max(train_peak, blend_peak))
    report = json.loads((Path(tmp) / "sub2" / "report.json").read_text())
    timings.ours_holdout.append(report["candidates"][report["picked"]]["holdout_auc"])
    if args.baseline:
        timings.baseline.append(public_baseline(args.train, args.test, Path(tmp) / "b_folds" / "holdout.csv"))
    if args.evaluate:  # the generalization protocols, every split fitted from scratch
        gen = [py, "src/evaluate.py", "--jobs", str(args.jobs), "--no-progress", "--config", str(cold_config)]
        gen += ["--train", args.train, "--artifacts", f"{tmp}/b", "--out", f"{tmp}/sub2/generalization.json"]
        gen_wall, gen_peak = measured(gen)
        timings.add(f"generalization (src/evaluate.py), --jobs {args.jobs}", gen_wall, gen_peak)
        timings.add(
            f"make run LOSO=1 (train, evaluate, blend), --jobs {args.jobs}",
            train_wall + gen_wall + blend_wall,
            max(train_peak, gen_peak, blend_peak),
        )


def print_timings(args: argparse.Namespace, timings: Timings) -> None:
    origin = f"drawn from {args.kaggle_test_from}" if args.kaggle_test_from else "made from --train"
    print(f"test file: {args.test}" + (f" ({args.kaggle_test} essays {origin})" if args.kaggle_test else ""))
    print(f"{'stage':<42} {'median wall s':>14} {'peak RSS MiB':>13}   (cpus={os.cpu_count()}, repeats={args.repeats})")
    for stage, values in timings.rows.items():
        print(f"{stage:<42} {statistics.median(w for w, _ in values):>14.1f} {max(p for _, p in values):>13.0f}")
    if timings.baseline:
        ours = statistics.median(w for w, _ in timings.rows[f"whole pipeline, --jobs {args.jobs} (make run)"])
        wall = statistics.median(b[0] for b in timings.baseline)
        cpu = statistics.median(b[1] for b in timings.baseline)
        print(f"{'public one-fit TF-IDF (NB + SGD), in-process':<42} {wall:>14.1f}   (CPU {cpu:.1f} s)")
        print(
            f"ours / baseline wall: x{ours / wall:.2f}; holdout AUC ours {statistics.median(timings.ours_holdout):.4f} "
            f"vs baseline {statistics.median(b[2] for b in timings.baseline):.4f}"
        )


def print_vectoriser_baselines(args: argparse.Namespace, models: list[str]) -> None:
    if args.vectoriser_baseline:
        for model in models:
            if load_model_config(model).config.family != "tfidf":
                continue
            naive, ours = naive_tfidf_seconds(args.train, model)
            print(
                f"vectoriser {model}: sklearn per fold {naive:.1f}s, shared counts {ours:.1f}s, "
                f"speed-up x{naive / ours:.2f}"
            )
    if args.counting_baseline:
        for model in models:
            pair = counting_seconds(args.train, args.test, model, max(args.repeats, 3))
            if pair:
                print(
                    f"counting {model}: sklearn {pair[0]:.1f}s, numpy {pair[1]:.1f}s, speed-up x{pair[0] / pair[1]:.2f}"
                )


def main() -> None:
    args = parse_args()
    models = args.models or yaml.safe_load((ROOT / "configs/project.yaml").read_text())["models"]
    made = tempfile.TemporaryDirectory()
    if args.kaggle_test and args.kaggle_test_from:
        args.test = drawn_test(args.kaggle_test_from, args.kaggle_test, Path(made.name))
    elif args.kaggle_test:
        args.test = kaggle_size_test(args.train, args.kaggle_test, Path(made.name))
    timings = Timings()
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            one_round(args, models, tmp, timings)
    print_timings(args, timings)
    made.cleanup()
    print_vectoriser_baselines(args, models)


if __name__ == "__main__":
    main()

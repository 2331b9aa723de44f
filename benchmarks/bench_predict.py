"""Predict throughput of saved ensembles, and the HTTP service's latency under a bounded local load.

For each ensemble (a set of trained models under artifacts/, blended into a temporary ensemble folder the
same way src/blend.py does), scores --n essays in chunks of --batch-size (what src/predict.py does) and
reports essays/s, median over --repeats, for each --threads setting (models scored side by side in threads;
the settings alternate within each repeat, so they share the machine's noise). Then starts src/serve.py on
one ensemble and sends --requests single-essay POSTs from --concurrency client threads: p50 / p95 / max
latency and requests/s.

    python benchmarks/bench_predict.py --train ../shared/data/train.csv --test ../shared/data/test_essays.csv \
        --ensembles tfidf=tfidf_word,tfidf_char minilm=minilm --serve tfidf
    python benchmarks/bench_predict.py --ensembles default=tfidf_bpe,ngram_lm,tfidf_function_words --threads 1 2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from daigt.config import SERVE_CONFIG, load_yaml
from daigt.data import load_essays
from daigt.distributed import free_port
from daigt.inference import EnsemblePredictor

ROOT = Path(__file__).resolve().parents[1]


def build_ensemble(name: str, models: list[str], args: argparse.Namespace, work: Path) -> Path:
    """Blend only ``models`` (symlinked into a private artifacts folder) into work/<name>/ensemble."""
    artifacts = work / name / "artifacts"
    artifacts.mkdir(parents=True)
    for model in models:
        (artifacts / model).symlink_to((Path(args.artifacts) / model).resolve())
    ensemble = work / name / "ensemble"
    cmd = [sys.executable, "src/blend.py", "--train", args.train, "--test", args.test, "--artifacts", str(artifacts)]
    cmd += ["--out", str(work / name / "submission.csv"), "--ensemble", str(ensemble)]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return ensemble


def throughput(predictors: list[EnsemblePredictor], frame, batch_size: int, repeats: int) -> list[float]:
    """Median essays/s of each predictor; within a repeat they take turns."""
    rates: list[list[float]] = [[] for _ in predictors]
    for _ in range(repeats):
        for predictor, rate in zip(predictors, rates, strict=True):
            started = time.perf_counter()
            for start in range(0, len(frame), batch_size):
                predictor.score(frame.iloc[start : start + batch_size])  # what predict does: scores + in_domain
            rate.append(len(frame) / (time.perf_counter() - started))
    return [statistics.median(r) for r in rates]


def service_latency(ensemble: Path, texts: list[str], requests: int, concurrency: int, work: Path) -> dict[str, float]:
    import httpx

    config = work / "serve.yaml"
    config.write_text(yaml.safe_dump({"ensemble": str(ensemble), "limits": load_yaml(SERVE_CONFIG)["limits"]}))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "src/serve.py", "--config", str(config), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/health")
                break
            except httpx.TransportError:
                time.sleep(0.2)
        with httpx.Client(timeout=120) as client:

            def one(i: int) -> float:
                started = time.perf_counter()
                response = client.post(f"{base}/predict", json={"essays": [{"text": texts[i % len(texts)]}]})
                response.raise_for_status()
                return time.perf_counter() - started

            for i in range(min(5, requests)):  # warm-up
                one(i)
            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                latencies = np.array(list(pool.map(one, range(requests))))
            wall = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "p50_ms": float(np.percentile(latencies, 50) * 1000),
        "p95_ms": float(np.percentile(latencies, 95) * 1000),
        "max_ms": float(latencies.max() * 1000),
        "requests_per_s": requests / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default="../shared/data/train.csv")
    parser.add_argument("--test", default="../shared/data/test_essays.csv")
    parser.add_argument("--artifacts", default=str(ROOT / "artifacts"))
    parser.add_argument(
        "--ensembles", nargs="+", default=["tfidf=tfidf_word,tfidf_char"], help="NAME=model,model ... to compare"
    )
    parser.add_argument("--n", type=int, default=1000, help="essays to score (drawn from --train texts)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="models side by side, to compare")
    parser.add_argument(
        "--without-shift", action="store_true", help="also time each setting without the shift score (in_domain)"
    )
    parser.add_argument("--serve", help="ensemble NAME to benchmark behind the HTTP service")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    essays = load_essays(args.train, role="train")
    frame = essays.sample(n=min(args.n, len(essays)), random_state=0).reset_index(drop=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        built = {}
        for spec in args.ensembles:
            name, _, models = spec.partition("=")
            built[name] = build_ensemble(name, models.split(","), args, work)
            settings = [(t, True) for t in args.threads]
            settings += [(t, False) for t in args.threads] if args.without_shift else []
            loaded = {t: EnsemblePredictor.load(built[name], threads=t) for t in args.threads}
            predictors = [loaded[t] if shift else replace(loaded[t], shift=None) for t, shift in settings]
            rates = throughput(predictors, frame, args.batch_size, args.repeats)
            for (threads, shift), predictor, rate in zip(settings, predictors, rates, strict=True):
                rows.append((name, predictor.picked, len(predictor.fold_models), threads, shift, rate, rate / rates[0]))
                print(f"{name}: {threads} thread(s), shift {'on' if shift else 'off'}, {rate:.1f} essays/s", flush=True)
        print(f"\npredict throughput: {len(frame)} essays, chunks of {args.batch_size}, median of {args.repeats}")
        print("| ensemble | picked | models | threads | in_domain | essays/s | vs the first row |")
        print("|---|---|---|---|---|---|---|")
        for name, picked, n_models, threads, shift, rate, ratio in rows:
            on = "yes" if shift else "no"
            print(f"| {name} | {picked} | {n_models} | {threads} | {on} | {rate:.1f} | {ratio:.2f}x |")
        if args.serve:
            stats = service_latency(built[args.serve], frame["text"].tolist(), args.requests, args.concurrency, work)
            print(f"\nservice ({args.serve}): {args.requests} single-essay requests, {args.concurrency} client threads")
            print("| p50 ms | p95 ms | max ms | requests/s |\n|---|---|---|---|")
            cells = [stats[k] for k in ("p50_ms", "p95_ms", "max_ms", "requests_per_s")]
            print("| " + " | ".join(f"{v:.1f}" for v in cells) + " |")


if __name__ == "__main__":
    main()

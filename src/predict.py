"""Score new essays with the saved ensemble: id, probability (AI-generated), decision (ai / human / unknown).

python src/predict.py --input essays.csv --output preds.csv
python src/predict.py --input essays.jsonl                 # CSV to stdout
cat essays.csv | python src/predict.py --input - > preds.csv
python src/predict.py --input test_essays.csv --submission submission.csv   # Kaggle's id,generated, validated

Loads every fold model of every model the blend picked (and the stacker) from ensemble/ (written by
src/blend.py), reads the input in chunks, and writes predictions chunk by chunk; a file output appears in
one rename at the end, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from daigt.blending import BlendConfig
from daigt.config import BLEND_CONFIG, load_config, repo_path
from daigt.errors import DaigtError, cli_entry
from daigt.essay_stream import STDIN, iter_essays
from daigt.inference import EnsemblePredictor
from daigt.submission import sample_beside, write_submission
from essayio import atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="essays: .csv/.tsv/.jsonl/.parquet, or - for stdin")
    parser.add_argument("--output", help="predictions CSV (default: stdout, unless --submission is given)")
    parser.add_argument(
        "--submission", type=Path, help="also write Kaggle's id,generated here, validated (the offline notebook)"
    )
    parser.add_argument(
        "--sample", type=Path, help="sample_submission.csv to validate against (default: beside the input, if any)"
    )
    parser.add_argument("--ensemble", help="saved ensemble folder (default: 'ensemble:' in configs/blend.yaml)")
    parser.add_argument("--artifacts", help="fold models, if moved since the blend (default: where blend saw them)")
    parser.add_argument("--format", choices=["csv", "jsonl", "parquet"], help="input format (default: by suffix)")
    parser.add_argument("--text-column", help="the text column, if not text/essay/full_text")
    parser.add_argument("--id-column", help="the id column, if not id/essay_id (without one, ids come from the text)")
    parser.add_argument("--batch-size", type=int, default=512, help="essays per chunk (memory vs speed)")
    parser.add_argument(
        "--threads", type=int, help="models scored side by side in this process (default: one per core; 1 for "
        "GPU models that each fill the card)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for flag, value in (("--batch-size", args.batch_size), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise DaigtError(f"{flag} {value}: give 1 or more")
    return args


def predict_stream(
    predictor: EnsemblePredictor,
    source: str,
    columns: dict[str, str],
    batch_size: int,
    fmt: str | None,
    progress: bool,
):
    """Yield prediction frames chunk by chunk."""
    bar = tqdm(desc="essays", unit="essay", disable=not progress, file=sys.stderr)
    for frame in iter_essays(source, columns, chunk_rows=batch_size, fmt=fmt):
        probability = predictor.predict_proba(frame)
        decision = predictor.decide(probability, frame["text"])  # too-short essays: unknown
        yield pd.DataFrame({"id": frame["id"], "probability": probability, "decision": decision})
        bar.update(len(frame))
    bar.close()


def _collected(chunks: Iterator[pd.DataFrame], kept: list[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Pass the chunks on, keeping each (a submission is written whole, after the last one)."""
    for chunk in chunks:
        kept.append(chunk)
        yield chunk


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ensemble = args.ensemble or repo_path(load_config(BlendConfig, BLEND_CONFIG).ensemble)
    predictor = EnsemblePredictor.load(ensemble, args.artifacts, args.threads)
    columns = {k: v for k, v in (("text", args.text_column), ("id", args.id_column)) if v}
    chunks = predict_stream(predictor, args.input, columns, args.batch_size, args.format, not args.no_progress)
    counts: Counter[str] = Counter()
    kept: list[pd.DataFrame] = []
    if args.submission is not None:
        chunks = _collected(chunks, kept)
    if args.submission is not None and not args.output:
        for chunk in chunks:
            counts.update(chunk["decision"])
    elif args.output and args.output != STDIN:
        with atomic.atomic_path(Path(args.output)) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
            for i, chunk in enumerate(chunks):
                chunk.to_csv(handle, header=i == 0, index=False)
                counts.update(chunk["decision"])
    else:
        for i, chunk in enumerate(chunks):
            chunk.to_csv(sys.stdout, header=i == 0, index=False)
            sys.stdout.flush()
            counts.update(chunk["decision"])
    if args.submission is not None:
        scored = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame({"id": [], "probability": []})
        sample = args.sample or (sample_beside(Path(args.input)) if args.input != STDIN else None)
        write_submission(args.submission, scored["id"], scored["probability"].to_numpy(), sample)
        print(f"submission: {args.submission} ({len(scored)} essays)", file=sys.stderr)
    total = sum(counts.values())
    summary = ", ".join(f"{d} {counts[d]} ({counts[d] / max(1, total):.1%})" for d in ("ai", "human", "unknown"))
    t = predictor.thresholds
    print(
        f"{total} essays scored by {predictor.picked}: {summary}  [ai >= {t.high:.4f}, human < {t.low:.4f}]",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

"""Score new essays with the saved ensemble: id, score, probability, in_domain, decision, reason, and where
the ensemble has the second task, generator and generator_probability.

score: the picked candidate's score (what the Kaggle submission holds; ranks essays). probability: that score
calibrated on the training essays (a probability of AI-generated there). in_domain: how much the essay
resembles the training essays (0-1; the share of training essays that look less like them). decision: ai /
human / unknown; reason: score, or why it is unknown (uncertain, too_short, out_of_domain, edge_of_domain).
generator: the generator family of a text decided ai (openai-chat, llama, ...; other: a known generator outside
them), or unknown: not decided ai, unsure, or unlike every training family. A family, never a model version.
generator_probability: the top family's calibrated probability (empty for a text not decided ai).

python src/predict.py --input essays.csv --output preds.csv
python src/predict.py --input essays.jsonl                 # CSV to stdout
cat essays.csv | python src/predict.py --input - > preds.csv
python src/predict.py --input test_essays.csv --submission submission.csv   # Kaggle's id,generated, validated
python src/predict.py --input essays.csv --by writer      # decisions per group (and per class, if labelled)
python src/predict.py --input essays.csv --by generator   # decisions per attributed generator family

Loads every fold model of every model the blend picked (and the stacker) from ensemble/ (written by
src/blend.py), reads the input in chunks, and writes predictions chunk by chunk; a file output appears in
one rename at the end, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from daigt.cli_options import add_output_options, configure_output
from daigt.config import DEFAULT_ENSEMBLE, repo_path
from daigt.decisions import DECISIONS, UNKNOWN
from daigt.errors import DaigtError, cli_entry
from daigt.essay_stream import KEPT, STDIN
from daigt.inference import EnsemblePredictor
from daigt.submission import sample_beside, write_submission
from daigt.trust import check_group_report, decision_table, group_report_paths, table_markdown, write_group_report
from essayio import atomic
from essayio.outputs import output_file


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="essays: .csv/.tsv/.jsonl/.parquet, or - for stdin")
    parser.add_argument("--output", help="predictions CSV (default: stdout, unless --submission is given)")
    parser.add_argument(
        "--submission",
        type=output_file("submission.csv"),
        help="also write Kaggle's id,generated here, validated (the offline notebook)",
    )
    parser.add_argument(
        "--sample-submission",
        type=Path,
        help="sample_submission.csv to validate against (default: beside the input, if any)",
    )
    parser.add_argument(
        "--ensemble",
        help="saved ensemble folder (default: ensemble/, the detector profile's, made by make detector; the Kaggle "
        "route's is ensemble-kaggle/)",
    )
    parser.add_argument("--artifacts", help="fold models, if moved since the blend (default: where blend saw them)")
    parser.add_argument("--format", choices=["csv", "jsonl", "parquet"], help="input format (default: by suffix)")
    parser.add_argument("--text-column", help="the text column, if not text/essay/full_text")
    parser.add_argument("--id-column", help="the id column, if not id/essay_id (without one, ids come from the text)")
    parser.add_argument("--batch-size", type=int, default=512, help="essays per chunk (memory vs speed)")
    parser.add_argument(
        "--threads", type=int, help="models scored side by side in this process (default: one per core; 1 for "
        "GPU models that each fill the card)",
    )  # fmt: skip
    parser.add_argument(
        "--by", metavar="COLUMN", help="print decisions per value of this input column (e.g. domain, writer; "
        "generator: the attributed family); with a label column, the humans and AI essays decided ai per group",
    )  # fmt: skip
    parser.add_argument(
        "--by-report",
        type=output_file("by_group.md"),
        help="with --by: also write the table here (.md), as .json and a plot (.png) beside",
    )
    add_output_options(parser)
    args = parser.parse_args(argv)
    configure_output(args)
    if args.by_report and not args.by:
        raise DaigtError("--by-report needs --by COLUMN")
    if args.output not in (None, STDIN):
        args.output = str(output_file("predictions.csv")(args.output))
    reports = group_report_paths(args.by_report) if args.by_report else []
    named = [("--output", args.output), ("--submission", args.submission), *(("--by-report", r) for r in reports)]
    for flag, output in named:
        atomic.refuse_input_as_output(output, [args.input], flag)
    if args.by_report:
        check_group_report(args.by_report)
    for flag, value in (("--batch-size", args.batch_size), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise DaigtError(f"{flag} {value}: give 1 or more")
    return args


def _written(chunk: pd.DataFrame) -> pd.DataFrame:
    return chunk[[c for c in chunk.columns if not c.startswith(KEPT)]]


def _collected(chunks: Iterator[pd.DataFrame], kept: list[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Pass the chunks on, keeping each (a submission is written whole, after the last one)."""
    for chunk in chunks:
        kept.append(chunk)
        yield chunk


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ensemble = args.ensemble or repo_path(DEFAULT_ENSEMBLE)
    predictor = EnsemblePredictor.load(ensemble, args.artifacts, args.threads)
    columns = {k: v for k, v in (("text", args.text_column), ("id", args.id_column)) if v}
    chunks = predictor.score_stream(args.input, columns, args.batch_size, args.format, not args.no_progress, args.by)
    counts: Counter[tuple[str, str]] = Counter()
    kept: list[pd.DataFrame] = []
    if args.submission is not None or args.by:
        chunks = _collected(chunks, kept)
    if args.submission is not None and not args.output:
        for chunk in chunks:
            counts.update(zip(chunk["decision"], chunk["reason"], strict=True))
    elif args.output and args.output != STDIN:
        with atomic.atomic_path(Path(args.output)) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
            for i, chunk in enumerate(chunks):
                _written(chunk).to_csv(handle, header=i == 0, index=False)
                counts.update(zip(chunk["decision"], chunk["reason"], strict=True))
    else:
        for i, chunk in enumerate(chunks):
            _written(chunk).to_csv(sys.stdout, header=i == 0, index=False)
            sys.stdout.flush()
            counts.update(zip(chunk["decision"], chunk["reason"], strict=True))
    scored = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame({"id": [], "score": []})
    if args.submission is not None:
        sample = args.sample_submission or (sample_beside(Path(args.input)) if args.input != STDIN else None)
        write_submission(args.submission, scored["id"], scored["score"].to_numpy(), sample)
        print(f"submission: {args.submission} ({len(scored)} essays)", file=sys.stderr)
    print(summary_line(counts, predictor), file=sys.stderr)
    if args.by:
        by_group(scored, args.by, args.by_report)


def summary_line(counts: Counter[tuple[str, str]], predictor: EnsemblePredictor) -> str:
    """Counts by decision, and the unknowns by reason, with the cuts."""
    total = sum(counts.values())
    per_decision = Counter({d: 0 for d in DECISIONS})
    for (decision, _), n in counts.items():
        per_decision[decision] += n
    summary = ", ".join(f"{d} {n} ({n / max(1, total):.1%})" for d, n in per_decision.items())
    why = ", ".join(f"{r} {n}" for (d, r), n in sorted(counts.items()) if d == UNKNOWN and n)
    t = predictor.thresholds
    edge = f", edge of domain: ai >= {t.edge_high:.4f}" if t.edge_high is not None and t.edge_below else ""
    return (
        f"{total} essays scored by {predictor.picked}: {summary}" + (f" (unknown: {why})" if why else "")
        + f"  [ai >= {t.high:.4f}, human < {t.low:.4f}, out of domain: in_domain < {t.out_of_domain_below:g}{edge}]"
    )  # fmt: skip


def by_group(scored: pd.DataFrame, by: str, report: Path | None) -> None:
    """Decisions per group of the ``by`` column: the table on stderr, and with ``report`` a .md, .json and .png."""
    labels = scored[KEPT + "label"].to_numpy(dtype=float) if KEPT + "label" in scored else None
    groups = scored[KEPT + by].to_numpy()
    decided = scored["decision"].to_numpy(), scored["reason"].to_numpy()
    table = decision_table(*decided, labels, groups, scored["score"].to_numpy())
    text = table_markdown(table, by)
    print(text, file=sys.stderr)
    if report is not None:
        write_group_report(report, table, by, text)


if __name__ == "__main__":
    main()

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
from pathlib import Path

from daigt.cli_options import parse_options
from daigt.config import DEFAULT_ENSEMBLE, repo_path
from daigt.errors import DaigtError, cli_entry
from daigt.essay_stream import STDIN
from daigt.inference import EnsemblePredictor, write_predictions
from daigt.submission import sample_beside, write_submission
from daigt.trust import check_group_report, group_report, group_report_paths
from essayio import atomic, console
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
    args = parse_options(parser, argv)
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


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ensemble = args.ensemble or repo_path(DEFAULT_ENSEMBLE)
    predictor = EnsemblePredictor.load(ensemble, args.artifacts, args.threads)
    columns = {k: v for k, v in (("text", args.text_column), ("id", args.id_column)) if v}
    chunks = predictor.score_stream(args.input, columns, args.batch_size, args.format, not args.no_progress, args.by)
    # no --output: the CSV goes to stdout, unless only a submission was asked for
    output = args.output or (None if args.submission is not None else STDIN)
    written = write_predictions(chunks, output, keep=args.submission is not None or bool(args.by))
    if args.submission is not None:
        sample = args.sample_submission or (sample_beside(Path(args.input)) if args.input != STDIN else None)
        write_submission(args.submission, written.scored["id"], written.scored["score"].to_numpy(), sample)
        console.say(f"submission: {args.submission} ({len(written.scored)} essays)", aside=True)
    console.say(predictor.summary(written.counts), aside=True)
    if args.by:
        console.say(group_report(written.scored, args.by, args.by_report), aside=True)


if __name__ == "__main__":
    main()

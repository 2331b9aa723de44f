"""python -m augment --in train.csv --out train_aug.csv --recipe configs/augment/default.yaml --copies 2

Writes every input row unchanged (copy 0) plus ``--copies`` augmented copies of each, all columns kept,
with ``parent_id``, ``copy`` and ``aug_ops`` (the ops that fired) added; the row count is checked before
the file appears (atomically). Messy input never crashes the run and nothing is dropped: empty texts,
undecodable bytes (replaced), control characters, non-English or huge essays are counted in the summary.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from pathlib import Path

from augment.errors import AugmentError
from augment.pipeline import ROOT, augment_frame, warnings_summary
from augment.recipe import Recipe
from essayio import atomic, console
from essayio.errors import cli_entry
from essayio.table import find_column, read_table


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m augment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--in", dest="source", required=True, type=Path, help="essays (.csv, .jsonl, .parquet)")
    parser.add_argument("--out", required=True, type=Path, help="output CSV")
    parser.add_argument("--recipe", default=str(ROOT / "configs/augment/default.yaml"))
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--workers", type=int, default=max(1, (mp.cpu_count() or 1)))
    parser.add_argument("--chunk", type=int, default=64, help="essays per task (back-translation batch size)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or stage lines on stderr")
    args = parser.parse_args(argv)
    if args.copies < 0:
        raise AugmentError(f"--copies {args.copies}: must be 0 or more (0 copies the input unchanged)")
    atomic.refuse_input_as_output(args.out, [args.source], "--out")
    recipe = Recipe.load(args.recipe)
    # the training loader's strict parsing (a broken quote or JSON line stops here, naming the row); bytes that
    # are not UTF-8 become U+FFFD and are counted below rather than stopping the run
    frame = read_table(args.source, replace_undecodable=True)
    out = augment_frame(frame, recipe, args.copies, args.workers, args.chunk, not args.no_progress)
    atomic.write_csv(args.out, out)
    text_col = find_column(frame, "text")
    warnings = {k: v for k, v in warnings_summary(frame[text_col].fillna("").astype(str)).items() if v}
    fired = out.loc[out["copy"] > 0, "aug_ops"].str.split("+").explode()
    counts = fired[fired != ""].value_counts()
    console.say(
        f"{len(frame)} essays -> {len(out)} rows ({args.copies} augmented copies each) -> {args.out}\n"
        f"ops fired: {', '.join(f'{k} {v}' for k, v in counts.items()) or 'none'}\n"
        f"warnings: {', '.join(f'{k} {v}' for k, v in warnings.items()) or 'none'} (all rows kept)",
        aside=True,
    )


if __name__ == "__main__":
    main()

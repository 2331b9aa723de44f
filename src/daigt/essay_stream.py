"""Essays in chunks, for scoring files too big to hold (or text piped on stdin).

Each chunk goes through the same ``canonical_frame`` as whole-file loading, with its starting row, so a bad
row deep in a large file is reported with its real row number. Ids must be unique across the whole stream.
"""

from __future__ import annotations

import codecs
import io
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from daigt.data import canonical_frame, resolve_columns, training_labels
from essayio.errors import DataError
from essayio.table import (
    CSV_SUFFIXES,
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    check_file,
    derive_ids,
    jsonl_record,
    refuse_non_utf8_kinds,
)

STDIN = "-"
BLOCK_BYTES = 1 << 20


def check_utf8(path: Path) -> None:
    """One streaming pass that names the line and byte offset of the first invalid UTF-8 byte (a Parquet or
    UTF-16 file given as text is named as what it is)."""
    with path.open("rb") as handle:
        refuse_non_utf8_kinds(path, handle.read(4))
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset, lines = 0, 0
    with path.open("rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                bad = offset + err.start
                line = lines + block[: err.start].count(b"\n") + 1
                raise DataError(
                    path,
                    f"byte {block[err.start]:#04x} at line {line} (offset {bad}) is not valid UTF-8",
                    fix="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                ) from None
            offset += len(block)
            lines += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DataError(path, "ends inside a UTF-8 character", fix="the file is truncated: re-export it") from None


def _text_stream(binary: BinaryIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="strict", newline="")


def _raw_chunks(source: str, fmt: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if fmt == "parquet":
        import pyarrow  # only here: the offline Kaggle package installs no pyarrow (CSV input)
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(source)
        except (pyarrow.ArrowInvalid, OSError) as err:
            raise DataError(
                source, f"is not a Parquet file ({err})", fix="drop --format parquet for text files"
            ) from None
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    binary = sys.stdin.buffer if source == STDIN else open(source, "rb")  # noqa: SIM115 - closed below
    try:
        text = _text_stream(binary)
        if fmt == "jsonl":
            yield from _jsonl_chunks(source, text, chunk_rows)
        else:
            sep = "\t" if source.endswith(".tsv") else ","
            yield from pd.read_csv(text, sep=sep, dtype=str, keep_default_na=False, chunksize=chunk_rows)
    finally:
        if binary is not sys.stdin.buffer:
            binary.close()


def _jsonl_chunks(source: str, text: io.TextIOBase, chunk_rows: int) -> Iterator[pd.DataFrame]:
    records: list[dict] = []
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        records.append(jsonl_record(source, number, line))
        if len(records) == chunk_rows:
            yield pd.DataFrame.from_records(records)
            records = []
    if records:
        yield pd.DataFrame.from_records(records)


def _format(source: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    if source == STDIN:
        first = sys.stdin.buffer.peek(1)[:1] if hasattr(sys.stdin.buffer, "peek") else b""
        return "jsonl" if first == b"{" else "csv"
    suffix = Path(source).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise DataError(source, f"unsupported file type '{suffix}'", fix="use .csv, .tsv, .parquet or .jsonl")


KEPT = "kept:"  # prefix of the input columns passed through beside the canonical ones


def iter_essays(
    source: str,
    columns: Mapping[str, str] | None = None,
    chunk_rows: int = 512,
    fmt: str | None = None,
    keep: Sequence[str] = (),
) -> Iterator[pd.DataFrame]:
    """Canonical test-role frames of at most ``chunk_rows`` essays from a file or stdin (``-``). Each column of
    ``keep`` comes along as ``kept:<name>`` (with ``keep``, the label too, as ``label``, where the input has one)."""
    if source != STDIN:
        path = check_file(source)
        if _format(source, fmt) != "parquet":
            check_utf8(path)
    fmt = _format(source, fmt)
    label = "<stdin>" if source == STDIN else source
    first_row, seen_ids, seen_texts = 1, set(), Counter()
    try:
        for raw in _raw_chunks(source, fmt, chunk_rows):
            if raw.empty:  # a header-only input: reported once below, never scored
                continue
            frame = canonical_frame(raw, Path(label), "test", columns, first_row)
            if keep:
                frame = _kept(raw, frame, keep, label, columns)
            if resolve_columns(raw, columns or {}, Path(label))["id"] is None:
                frame["id"] = derive_ids(frame["text"], seen_texts).to_numpy()
            repeated = frame["id"].isin(seen_ids).to_numpy()
            if repeated.any():
                i = int(repeated.argmax())
                raise DataError(
                    label,
                    f"id '{frame['id'].iloc[i]}' was already used earlier in the input",
                    row=first_row + i,
                    fix="give every essay its own id",
                )
            seen_ids.update(frame["id"])
            first_row += len(raw)
            yield frame
    except UnicodeDecodeError as err:
        raise DataError(label, f"is not valid UTF-8 ({err.reason})", fix="send UTF-8 text") from None
    except pd.errors.ParserError as err:
        raise DataError(label, f"not a valid CSV ({err})", fix="check quoting and delimiters") from None
    except pd.errors.EmptyDataError:
        raise DataError(label, "has no header or rows", fix="send a CSV with a text column") from None
    if first_row == 1:
        raise DataError(label, "has a header but no rows", fix="point to a file with essays in it")


def _kept(
    raw: pd.DataFrame, frame: pd.DataFrame, keep: Sequence[str], label: str, columns: Mapping[str, str] | None
) -> pd.DataFrame:
    missing = [c for c in keep if c not in raw.columns]
    if missing:
        raise DataError(label, f"no column '{missing[0]}' (found {list(raw.columns)})", fix="name a column it has")
    frame = frame.assign(**{KEPT + c: raw[c].astype(str).to_numpy() for c in keep})
    labels = training_labels(raw, label, columns)
    return frame if labels is None else frame.assign(label=labels.to_numpy())

"""Reading essay tables: CSV / TSV / Parquet / JSONL as strings, refusing empty, undecodable or malformed files
with the file, the row and the fix. The column names the pipeline recognises, and ids derived from the text.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from essayio.errors import DataError

# canonical name -> the column names that mean it, in order of preference
CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": ("id", "essay_id"),
    "text": ("text", "essay", "full_text"),
    "label": ("label", "generated", "target"),
    "group": ("prompt_name", "prompt_id", "prompt"),
    "source": ("source", "model"),
    "domain": ("domain",),  # what kind of writing (essays, news, reviews...): leave-one-domain-out, per-domain shift
}
CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def find_column(frame: pd.DataFrame, canonical: str) -> str | None:
    """The first of the usual names for ``canonical`` that ``frame`` has."""
    return next((c for c in CANDIDATES[canonical] if c in frame.columns), None)


def read_table(path: str | Path, replace_undecodable: bool = False) -> pd.DataFrame:
    """Read CSV / TSV / Parquet / JSONL as strings, refusing empty, malformed or (unless
    ``replace_undecodable``: then they become U+FFFD) undecodable files."""
    path = check_file(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for a damaged file
            raise DataError(path, f"not a readable Parquet file ({type(err).__name__})", fix="re-export it") from None
    elif suffix in JSONL_SUFFIXES:
        frame = _read_jsonl(path, _decode(path, replace_undecodable))
    elif suffix in CSV_SUFFIXES:
        sep = "\t" if suffix == ".tsv" else ","
        try:
            frame = pd.read_csv(
                io.StringIO(_decode(path, replace_undecodable)), sep=sep, dtype=str, keep_default_na=False
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise DataError(path, f"not a valid CSV ({err})", fix="check quoting and delimiters") from None
    else:
        raise DataError(path, f"unsupported file type '{suffix}'", fix="use .csv, .tsv, .parquet or .jsonl")
    if frame.empty:
        raise DataError(path, "has a header but no rows", fix="point to a file with essays in it")
    return frame


def physical_line(path: str | Path, row: int) -> int | None:
    """The file line where data row ``row`` (1-based, header not counted) of a CSV/TSV starts, or None when it
    cannot be told (not a CSV file, unreadable, fewer rows). Essays span lines, so rows and lines differ."""
    path = Path(path)
    if path.suffix.lower() not in CSV_SUFFIXES or not path.is_file():
        return None
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            end_of_previous = 0
            for number, _ in enumerate(reader):  # record 0 is the header
                if number == row:
                    return end_of_previous + 1
                end_of_previous = reader.line_num
    except (OSError, csv.Error):
        return None
    return None


def check_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "is a folder, not a file", fix="give the essays file inside it")
    if path.exists() and not path.is_file():
        raise DataError(path, "is not a regular file (a device or a pipe)", fix="give a file of essays, or - for stdin")
    if not path.is_file():
        raise DataError(path, "file not found", fix="check the path (see README: 'Put the data in place')")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty", fix="re-download or re-export it")
    return path


PARQUET_MAGIC = b"PAR1"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def refuse_non_utf8_kinds(path: Path, head: bytes) -> None:
    """Name a Parquet or UTF-16 file given as text as what it is (its first bytes say), instead of a parse error
    about fields or bytes further on."""
    if head.startswith(PARQUET_MAGIC):
        raise DataError(path, "is a Parquet file, not text", fix="pass --format parquet, or name it .parquet")
    if head.startswith(UTF16_BOMS):
        raise DataError(path, "is UTF-16 text", fix="re-save it as UTF-8 (e.g. iconv -f utf-16 -t utf-8)")


def _decode(path: Path, replace_undecodable: bool = False) -> str:
    raw = path.read_bytes()
    refuse_non_utf8_kinds(path, raw[:4])
    if replace_undecodable:
        return raw.decode("utf-8-sig", errors="replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            path,
            f"byte {raw[err.start]:#04x} at line {line} (offset {err.start}) is not valid UTF-8",
            fix="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        ) from None


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    records = [jsonl_record(path, n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return pd.DataFrame.from_records(records)


def jsonl_record(path: str | Path, number: int, line: str) -> dict:
    """One JSON-lines record, or a DataError naming its line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON ({err.msg})", row=number, fix="one JSON object per line") from None
    if not isinstance(record, dict):
        raise DataError(path, "expected a JSON object", row=number, fix="one JSON object per line")
    return record


def derive_ids(text: pd.Series, seen: Counter[str] | None = None) -> pd.Series:
    """Stable ids from the text (so reordering a file keeps folds valid); repeats get _1, _2, ...

    ``seen`` carries the counts across the chunks of one stream.
    """
    seen = Counter() if seen is None else seen
    out = []
    for t in text:
        digest = hashlib.sha1(t.encode("utf-8")).hexdigest()[:12]
        out.append(digest if seen[digest] == 0 else f"{digest}_{seen[digest]}")
        seen[digest] += 1
    return pd.Series(out, index=text.index, dtype=object)

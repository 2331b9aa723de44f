"""Essay tables in and out, shared by the pipeline (``daigt``) and ``augment``: strict reading of CSV / TSV /
JSONL / Parquet, atomic writes, and the one-line error every entry point prints. A leaf: imports neither."""

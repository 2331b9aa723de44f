"""The fault matrix: what a user or an operator gets wrong, through the real entry points.

Every row asserts exit status 2, one line on stderr that names the file and the fix (no traceback), and that
no output was replaced or half-written.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import blend_args, predict_args, train_args

import blend
import predict
import train_fold
from augment.__main__ import main as augment_main
from essayio import atomic
from essayio.errors import cli_entry

Case = Callable[[dict[str, Path]], tuple[Callable[[], None], str]]


def _trained(ws: dict[str, Path]) -> None:
    train_fold.main(train_args(ws))


def _blended(ws: dict[str, Path]) -> Path:
    _trained(ws)
    out = ws["root"] / "sub" / "submission.csv"
    blend.main(blend_args(ws, out))
    return out


def truncated_folds(ws):
    _trained(ws)
    folds = ws["root"] / "folds" / "folds.csv"
    folds.write_text(folds.read_text()[:9])
    return lambda: train_fold.main(train_args(ws)), "folds.csv: damaged"


def empty_metrics(ws):
    out = _blended(ws)
    (ws["artifacts"] / "tiny_tfidf" / "fold0" / "metrics.json").write_text("")
    return lambda: blend.main(blend_args(ws, out)), "no complete model"


def corrupt_parquet_train(ws):
    bad = ws["root"] / "train.parquet"
    bad.write_bytes(b"PAR1 this is not parquet PAR1")
    return lambda: train_fold.main([*train_args(ws), "--train", str(bad)]), "train.parquet: not a readable Parquet"


def zero_width_only_text(ws):
    frame = pd.read_csv(ws["train"])
    frame.loc[3, "text"] = "\u200b\u200b \u200d"
    frame.to_csv(ws["train"], index=False, encoding="utf-8")
    return lambda: train_fold.main(train_args(ws)), "row 4, column 'text': text is empty (or only invisible"


@contextmanager
def _disk_refuses(code: int) -> Iterator[None]:
    """Every new file fails as the machine would fail it (full disk, read-only file system)."""
    real = atomic.tempfile.mkstemp

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(kwargs.get("dir", "")))

    atomic.tempfile.mkstemp = refuse
    try:
        yield
    finally:
        atomic.tempfile.mkstemp = real


def full_disk_on_submission(ws):
    out = _blended(ws)

    def run() -> None:
        with _disk_refuses(errno.ENOSPC):
            blend.main(blend_args(ws, out))

    return run, "No space left on device — free some disk space"


def read_only_predict_output(ws):
    _blended(ws)

    def run() -> None:
        with _disk_refuses(errno.EROFS):
            predict.main(predict_args(ws, str(ws["test"]), ws["root"] / "ro" / "preds.csv"))

    return run, "Read-only file system — the file system is read-only"


def predict_on_header_only(ws):
    _blended(ws)
    header = ws["root"] / "header.csv"
    header.write_text("id,text\n")
    return lambda: predict.main(predict_args(ws, str(header), ws["root"] / "preds.csv")), "header.csv: has a header"


def _augment(file: str | None, content: str, expected: str, *extra: str, recipe: object = None) -> Case:
    """``python -m augment`` on an input file written with ``content`` (None: the workspace's train.csv), with
    ``recipe`` as the recipe YAML when given."""

    def case(ws: dict[str, Path]) -> tuple[Callable[[], None], str]:
        source = ws["train"] if file is None else ws["root"] / file
        if file is not None:
            source.write_text(content)
        args = ["--in", str(source), "--out", str(ws["root"] / "a.csv"), *extra]
        if recipe is not None:
            (ws["root"] / "recipe.yaml").write_text(yaml.safe_dump(recipe))
            args += ["--recipe", str(ws["root"] / "recipe.yaml")]
        return lambda: augment_main(args), expected

    return case


CASES: dict[str, Case] = {
    "truncated folds.csv": truncated_folds,
    "empty metrics.json": empty_metrics,
    "corrupt parquet": corrupt_parquet_train,
    "zero-width-only text": zero_width_only_text,
    "full disk under submissions/": full_disk_on_submission,
    "read-only predict --output": read_only_predict_output,
    "predict on a header-only file": predict_on_header_only,
    "augment --copies -1": _augment(None, "", "--copies -1: must be 0 or more", "--copies", "-1"),
    "augment empty file": _augment("empty.csv", "", "empty.csv: file is empty"),
    "augment list-shaped recipe": _augment(None, "", "recipe.yaml", recipe=[{"op": "char_typo"}]),
    "augment broken jsonl line": _augment(
        "essays.jsonl", '{"id": "a", "text": "fine", "generated": 1}\n{"id": "b", "text": "broken\n', "essays.jsonl"
    ),
    "augment unclosed quote in the last row": _augment(
        "quote.csv", 'id,text,generated\na,"fine",1\nb,"never closed,0\n', "quote.csv: not a valid CSV"
    ),
}


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every published output (not inputs, not caches) by path, with its bytes."""
    keep = ("sub", "ensemble", "artifacts", "folds", "ro")
    return {
        str(p.relative_to(root)): p.read_bytes()
        for part in keep
        if (root / part).exists()
        for p in sorted((root / part).rglob("*"))
        if p.is_file() and "dedup-" not in p.name
    }


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_fault_gets_one_line_and_replaces_nothing(case: str, workspace: dict[str, Path], capsys) -> None:
    run, expected = CASES[case](workspace)
    before = _snapshot(workspace["root"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run()
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2, err
    lines = [line for line in err.splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0] and "Traceback" not in err
    after = _snapshot(workspace["root"])
    assert {k: v for k, v in after.items() if k in before} == before, "an existing output changed"
    leftovers = [p for p in workspace["root"].rglob("*") if p.name.endswith(".tmp") or ".staging-" in str(p)]
    assert not leftovers
    shutil.rmtree(workspace["root"] / "a.csv", ignore_errors=True)


def test_a_missing_third_party_module_is_one_line_but_a_missing_own_module_is_a_bug(capsys) -> None:
    @cli_entry
    def needs(module: str) -> None:
        raise ModuleNotFoundError(f"No module named '{module}'", name=module)

    with pytest.raises(SystemExit) as stop:
        needs("spellchecker")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: the Python module 'spellchecker' is not installed here: run `make setup`")
    with pytest.raises(ModuleNotFoundError):
        needs("daigt.nowhere")

"""The data contract: every supported format becomes the canonical frame; bad input fails precisely."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daigt.data import load_essays
from daigt.errors import DataError


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_kaggle_train_and_test(tmp_path: Path) -> None:
    train = load_essays(
        write(tmp_path, "train_essays.csv", "id,prompt_id,text,generated\na,0,Hello there.,0\nb,1,Hi.,1\n"), "train"
    )
    assert list(train.columns) == ["id", "text", "label", "group", "source", "domain"]
    assert train["label"].tolist() == [0.0, 1.0] and train["group"].tolist() == ["0", "1"]
    test = load_essays(write(tmp_path, "test_essays.csv", "id,prompt_id,text\nx,0,Some text\n"), "test")
    assert test["label"].isna().all() and test["id"].tolist() == ["x"]


def test_kaggle_prompt_ids_are_named_from_train_prompts_beside_the_file(tmp_path: Path) -> None:
    essays = write(tmp_path, "train_essays.csv", "id,prompt_id,text,generated\na,0,Hello.,0\nb,1,Hi.,1\nc,7,Yo.,0\n")
    write(tmp_path, "train_prompts.csv", 'prompt_id,prompt_name,instructions\n0,Car-free cities,"Write, please"\n'
                                         "1,Does the electoral college work?,Argue\n")  # fmt: skip
    named = load_essays(essays, "train")["group"].tolist()
    assert named == ["Car-free cities", "Does the electoral college work?", "7"]  # an unknown id stays as it is
    write(tmp_path, "train_prompts.csv", "prompt_id,title\n0,Cars\n")
    with pytest.raises(DataError, match=r"train_prompts\.csv.*no prompt_name column"):
        load_essays(essays, "train")


def test_daigt_soft_labels_and_derived_ids(tmp_path: Path) -> None:
    frame = load_essays(
        write(tmp_path, "daigt.csv", "text,label,source,prompt_name\nOne.,0.25,a,p\nTwo.,1,b,q\n"), "train"
    )
    assert frame["label"].tolist() == [0.25, 1.0]
    assert frame["id"].str.len().eq(12).all() and frame["id"].is_unique  # stable ids from the text
    again = load_essays(tmp_path / "daigt.csv", "train")
    assert frame["id"].tolist() == again["id"].tolist()


def test_generic_parquet_and_jsonl_with_mapping(tmp_path: Path) -> None:
    frame = pd.DataFrame({"essay_key": ["a", "b"], "body": ["x y", "z"], "is_ai": [0.0, 1.0]})
    frame.to_parquet(tmp_path / "g.parquet")
    mapping = {"id": "essay_key", "text": "body", "label": "is_ai"}
    assert load_essays(tmp_path / "g.parquet", "train", mapping)["text"].tolist() == ["x y", "z"]
    jsonl = write(
        tmp_path,
        "g.jsonl",
        '{"essay_key": "a", "body": "x", "is_ai": 1}\n\n{"essay_key": "b", "body": "y", "is_ai": 0}\n',
    )
    assert load_essays(jsonl, "train", mapping)["label"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("name", "content", "role", "expected"),
    [
        ("empty.csv", b"", "train", "file is empty"),
        ("header.csv", "id,text,generated\n", "train", "no rows"),
        ("notext.csv", "id,body,generated\na,x,1\n", "train", "no text column"),
        ("nolabel.csv", "id,text\na,x\n", "train", "no label column"),
        ("emptytext.csv", 'id,text,generated\na,ok,1\nb,"   ",0\n', "train", "row 2, column 'text': text is empty"),
        ("nantext.csv", "id,text,generated\na,ok,1\nb,,0\n", "train", "row 2, column 'text'"),
        (
            "badlabel.csv",
            "id,text,generated\na,ok,1\nb,ok,yes\n",
            "train",
            "row 2, column 'generated': label 'yes' is not a number",
        ),
        (
            "range.csv",
            "id,text,generated\na,ok,1.5\n",
            "train",
            "row 1, column 'generated': label 1.5 is outside [0, 1]",
        ),
        ("dupid.csv", "id,text,generated\na,x,1\nb,y,0\na,z,1\n", "train", "duplicate id: 'a' at rows [1, 3]"),
        (  # essays span lines: the message gives the data row and the line an editor shows
            "multiline.csv",
            'id,text,generated\na,"first\n\nessay",1\nb,"second\nessay",0\nc,ok,maybe\n',
            "train",
            "row 3 (line 7), column 'generated': label 'maybe' is not a number",
        ),
        ("testdup.csv", "id,text\nq,x\nq,y\n", "test", "test ids repeat: 'q'"),
        (
            "latin1.csv",
            "id,text,generated\na,caf\xe9,1\n".encode("latin-1"),
            "train",
            "line 2 (offset 23) is not valid UTF-8",
        ),
        ("bad.jsonl", '{"text": "a", "label": 1}\n{oops\n', "train", "row 2: invalid JSON"),
    ],
)
def test_bad_input_names_file_row_column_and_fix(
    tmp_path: Path, name: str, content: str | bytes, role: str, expected: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(DataError) as err:
        load_essays(path, role)  # type: ignore[arg-type]
    message = str(err.value)
    assert message.startswith(str(path)) and expected in message
    assert " — " in message or "no rows" in message or "is empty" in message  # says what to do
    assert "\n" not in message


def test_missing_file_and_bad_mapping(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_essays(tmp_path / "nope.csv", "train")
    path = write(tmp_path, "t.csv", "id,text,generated\na,x,1\n")
    with pytest.raises(DataError, match="column 'body' \\(mapped as text\\) is not in the file"):
        load_essays(path, "train", {"text": "body"})


def test_numeric_looking_prompts_and_ids_stay_strings(tmp_path: Path) -> None:
    frame = load_essays(write(tmp_path, "t.csv", "id,prompt_name,text,generated\n007,-2,x,1\n008,NaN,y,0\n"), "train")
    assert frame["id"].tolist() == ["007", "008"] and frame["group"].tolist() == ["-2", "NaN"]
    assert frame["label"].dtype == np.float64

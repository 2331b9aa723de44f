"""A user's mistakes and signals through the real entry points (subprocesses): one line and exit 2, or for a
signal exit 130/143 with nothing half-written left; never a traceback, never the user's data replaced."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import make_essays, make_workspace
from fastapi.testclient import TestClient
from helpers import blend_args, blended

from daigt.config import REPO_ROOT
from daigt.inference import EnsemblePredictor
from daigt.service import ServeLimits, create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return blended(make_workspace(tmp_path_factory.mktemp("mistakes"), make_essays(120)), "rank_mean")


@contextmanager
def sigint_handled() -> Iterator[None]:
    """Children started inside get SIGINT at its default, whatever this test run inherited. A background job
    (`make test &`, nohup, some CI runners) ignores SIGINT, and a child would inherit that. A handled signal
    is reset to the default at exec (a pre-exec hook could deadlock the child while the parent runs threads)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess, status: int = 2) -> str:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def predict_cmd(ws: dict[str, Path], *args: str) -> list[str]:
    return ["src/predict.py", "--ensemble", str(ws["ensemble"]), "--no-progress", *args]


def test_predict_refuses_to_write_over_its_input_by_any_spelling(ws: dict[str, Path], tmp_path: Path) -> None:
    essays = tmp_path / "x.csv"
    pd.read_csv(ws["test"]).to_csv(essays, index=False)
    before = essays.read_bytes()
    (tmp_path / "link.csv").symlink_to(essays)
    for output in (essays, tmp_path / "sub" / ".." / "x.csv", tmp_path / "link.csv"):
        line = one_line(run(*predict_cmd(ws, "--input", str(essays), "--output", str(output))))
        assert "is the input" in line
    assert "is the input" in one_line(run(*predict_cmd(ws, "--input", str(essays), "--submission", str(essays))))
    assert essays.read_bytes() == before
    train = ws["train"].read_bytes()  # blend's and evaluate's --out onto the training file
    for entry in ("src/blend.py", "src/evaluate.py"):
        args = ["--config", str(ws["project"]), "--artifacts", str(ws["artifacts"]), "--out", str(ws["train"])]
        assert "is the input" in one_line(run(entry, *args, "--no-progress"))
    assert ws["train"].read_bytes() == train


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_predict_leaves_nothing_behind(ws: dict[str, Path], tmp_path: Path, sig, status) -> None:
    big = tmp_path / "big.csv"
    make_essays(6000, seed=9)[["text"]].to_csv(big, index=False)
    out = tmp_path / "p.csv"
    with sigint_handled():
        proc = subprocess.Popen(
            [sys.executable, *predict_cmd(ws, "--input", str(big), "--output", str(out), "--batch-size", "16")],
            cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".p.csv.pid*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # the temp file exists: the run is writing
    assert proc.poll() is None, "predict ended before it could be signalled"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "Traceback" not in err and len([x for x in err.splitlines() if x.strip()]) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".p.csv*"))


def test_wrong_format_flags_and_files_that_are_not_what_they_say(ws: dict[str, Path], tmp_path: Path) -> None:
    assert "not a Parquet file" in one_line(run(*predict_cmd(ws, "--input", str(ws["test"]), "--format", "parquet")))
    disguised = tmp_path / "essays.csv"
    pd.read_csv(ws["test"]).to_parquet(disguised)
    assert "is a Parquet file" in one_line(run(*predict_cmd(ws, "--input", str(disguised))))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text(ws["test"].read_text(), encoding="utf-16")
    assert "UTF-16" in one_line(run(*predict_cmd(ws, "--input", str(utf16))))
    # the training loader and augment read whole tables: the same words
    assert "UTF-16" in one_line(run("-m", "augment", "--in", str(utf16), "--out", str(tmp_path / "aug.csv")))
    line = one_line(run("src/train_fold.py", "--train", str(disguised), "--fold", "0", "--artifacts", str(tmp_path)))
    assert "is a Parquet file" in line
    assert "is not a regular file" in one_line(run(*predict_cmd(ws, "--input", "/dev/null")))
    assert "is a folder, not a file" in one_line(run(*predict_cmd(ws, "--input", str(tmp_path))))


def test_a_damaged_ensemble_is_one_line(ws: dict[str, Path], tmp_path: Path) -> None:
    damaged = tmp_path / "ensemble"
    damaged.mkdir()
    for f in ws["ensemble"].iterdir():
        (damaged / f.name).write_bytes(f.read_bytes())
    spec = damaged / "ensemble.json"
    spec.write_text(spec.read_text()[:40])
    line = one_line(run("src/predict.py", "--ensemble", str(damaged), "--input", str(ws["test"]), "--no-progress"))
    assert "ensemble.json: damaged" in line and "blend" in line


def test_out_of_range_port_and_missing_model_file(ws: dict[str, Path]) -> None:
    assert "1 to 65535" in one_line(run("src/serve.py", "--port", "99999", "--ensemble", str(ws["ensemble"])))
    line = one_line(run("src/serve.py", "--config", "configs/serve.yaml", "--ensemble", str(ws["ensemble"])))
    assert "serve's own config is --serve-config" in line
    line = one_line(run("src/train_fold.py", "--model", "configs/models/nope.yaml", "--fold", "0"))
    assert "nope.yaml" in line and ".yaml.yaml" not in line


def test_a_file_where_a_folder_is_needed_and_a_model_listed_twice(ws: dict[str, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "submissions"
    blocker.write_text("not a folder")
    line = one_line(run("src/blend.py", *blend_args(ws, blocker / "submission.csv")))
    assert "submissions" in line
    config = yaml.safe_load(ws["project"].read_text())
    twice = tmp_path / "twice.yaml"
    twice.write_text(yaml.safe_dump({**config, "models": ["tiny_tfidf", "tiny_tfidf"]}))
    assert "listed twice" in one_line(run("src/train_fold.py", "--config", str(twice), "--fold", "0"))


def test_an_experiments_blend_leaves_the_shared_ensemble_alone(ws: dict[str, Path], tmp_path: Path) -> None:
    args = blend_args(ws, tmp_path / "exp" / "submission.csv")
    i = args.index("--ensemble")
    del args[i : i + 2]  # no --ensemble: an experiment's --out decides where its ensemble goes
    proc = run("src/blend.py", *args)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "exp" / "ensemble" / "ensemble.json").is_file()
    assert "[blend] models: tiny_char, tiny_tfidf (from models:" in proc.stdout


def test_blend_leaves_out_a_trained_model_that_models_does_not_list(ws: dict[str, Path], tmp_path: Path) -> None:
    config = yaml.safe_load(ws["project"].read_text())
    narrowed = tmp_path / "project.yaml"
    narrowed.write_text(yaml.safe_dump({**config, "models": ["tiny_tfidf"]}))
    args = blend_args(ws, tmp_path / "exp" / "submission.csv")
    args[args.index("--config") + 1] = str(narrowed)
    args[args.index("--ensemble") + 1] = str(tmp_path / "ensemble")
    proc = run("src/blend.py", *args)
    assert proc.returncode == 0, proc.stderr
    assert "[blend] models: tiny_tfidf (" in proc.stdout and "not listed: tiny_char" in proc.stdout
    spec = json.loads((tmp_path / "ensemble" / "ensemble.json").read_text())
    assert list(spec["models"]) == ["tiny_tfidf"]


def test_serve_applies_the_clis_input_rules_in_short_messages(ws: dict[str, Path]) -> None:
    client = TestClient(create_app(EnsemblePredictor.load(ws["ensemble"]), ServeLimits()))
    essay = "an essay with enough words to be scored " * 10
    plain = client.post("/predict", content=essay.encode(), headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and "send JSON" in plain.json()["detail"]
    assert essay not in plain.text  # the body is never echoed back
    twice = client.post("/predict", json={"essays": [{"id": "a", "text": essay}, {"id": "a", "text": essay}]})
    assert twice.status_code == 422 and "used twice" in twice.json()["detail"]
    wrong = client.post("/predict", json={"essays": [{"body": essay}]})
    assert wrong.status_code == 422 and len(wrong.json()["detail"]) < 200 and essay not in wrong.text
    ok = client.post("/predict", json={"essays": [{"id": "a", "text": essay}]})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["reason"]


@pytest.mark.parametrize("blank", ["\u200b\u200b\u200b", "\x00\x00", " \ufeff\u00ad \x07"])
def test_a_text_with_nothing_to_read_is_refused_alike_by_the_cli_and_the_service(
    ws: dict[str, Path], tmp_path: Path, blank: str
) -> None:
    client = TestClient(create_app(EnsemblePredictor.load(ws["ensemble"]), ServeLimits()))
    answer = client.post("/predict", json={"essays": [{"text": "a fine essay " * 10}, {"text": blank}]})
    assert answer.status_code == 422 and "essays[1].text is empty (or only invisible" in answer.json()["detail"]
    essays = tmp_path / "essays.jsonl"
    essays.write_text(pd.DataFrame({"text": ["a fine essay " * 10, blank]}).to_json(orient="records", lines=True))
    line = one_line(run(*predict_cmd(ws, "--input", str(essays))))
    assert "row 2, column 'text': text is empty (or only invisible" in line


def test_ctrl_c_in_train_fold_jobs_stops_the_workers_in_one_line(tmp_path: Path) -> None:
    import psutil

    ws = make_workspace(tmp_path, make_essays(3000, seed=4))
    char = ws["root"] / "tiny_char.yaml"
    char.write_text(ws["model"].read_text().replace("analyzer: word", "analyzer: char_wb"))
    config = yaml.safe_load(ws["project"].read_text())
    ws["project"].write_text(yaml.safe_dump({**config, "models": [str(ws["model"]), str(char)]}))
    cmd = ["src/train_fold.py", "--config", str(ws["project"]), "--fold", "all", "--model", "all", "--jobs", "2"]
    with sigint_handled():
        proc = subprocess.Popen(
            [sys.executable, *cmd, "--no-progress"], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while len(parent.children(recursive=True)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    workers = parent.children(recursive=True)
    assert proc.poll() is None and workers, "train_fold ended before it could be interrupted"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err.splitlines()[-1], err
    psutil.wait_procs(workers, timeout=10)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_soft_labels_of_one_half_everywhere_are_named_as_such(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, make_essays(60).assign(generated=0.5))
    line = one_line(
        run("src/train_fold.py", "--config", str(ws["project"]), "--fold", "0", "--model", str(ws["model"]))
    )
    assert "60 of them are exactly 0.5" in line


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with nothing installed: what `python src/...` is when the project's venv is not activated."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


def test_an_entry_point_started_by_another_python_reruns_under_the_venv(bare_python: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(bare_python.parent)}
    done = subprocess.run([bare_python, "src/runs.py", "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("usage: runs.py"), done.stderr


def test_without_the_venv_an_entry_point_says_how_to_set_it_up_in_one_line(bare_python: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(bare_python.parent), "DAIGT_REEXECUTED": "1"}  # as if no venv
    done = subprocess.run([bare_python, "src/train_fold.py", "--fold", "0"], cwd=REPO_ROOT, capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {bare_python} lacks the project's packages (numpy, pandas, yaml, essayio): run `make setup`, then "
        "`source .venv/bin/activate` or call `.venv/bin/python src/...`\n"
    )


def test_a_key_given_twice_a_seed_out_of_range_and_a_zero_sample_are_one_line(
    ws: dict[str, Path], tmp_path: Path
) -> None:
    """PyYAML keeps the last of two equal keys without a word; sklearn refuses seed -1 with a traceback; attack's
    --sample 0 used to score everything. Each stops before any work, naming what to fix."""
    twice = tmp_path / "project.yaml"
    twice.write_text(ws["project"].read_text() + "test: elsewhere.csv\n")  # 'test:' is already there
    line = one_line(run("src/train_fold.py", "--fold", "0", "--config", str(twice), "--no-progress"))
    assert "project.yaml: 'test' is given twice" in line and "keep one" in line
    common = ["--fold", "0", "--model", str(ws["model"]), "--config", str(ws["project"]), "--no-progress"]
    for seed in ("-1", str(2**32)):
        line = one_line(run("src/train_fold.py", *common, "--seed", seed))
        assert f"--seed {seed}: give a seed in [0, 2**32)" in line
    line = one_line(run("src/train_fold.py", *common, "--set", "seed=-5"))
    assert "seed: must lie in [0, 2**32), got -5" in line
    attack = ["src/attack.py", "--model", "tiny_tfidf", "--config", str(ws["project"]), "--essays", "0"]
    assert "--essays 0: give the number of essays" in one_line(run(*attack, "--artifacts", str(ws["artifacts"])))


def test_serve_says_a_busy_port_or_a_foreign_host_in_one_line_and_ctrl_c_ends_it_with_130(ws: dict[str, Path]) -> None:
    import socket

    import httpx

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = ["src/serve.py", "--ensemble", str(ws["ensemble"]), "--port", str(port)]
        assert "Address already in use" in one_line(run(*serve))
    assert "cannot listen there" in one_line(run(*serve, "--host", "192.0.2.1"))  # TEST-NET-1: not this machine's
    with sigint_handled():
        proc = subprocess.Popen([sys.executable, *serve], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted (Ctrl-C)"), err

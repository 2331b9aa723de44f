"""Experiment history: one record per blend run, appended to ``runs/history.jsonl`` (the format's one owner).

A record holds what a competitor compares runs by: when, which git commit, which data (file names and a
fingerprint of the rows), every model's resolved config
(and its hash), the blend config, OOF / holdout AUC per candidate, the pick, and the held-out-source figures
when they were used. ``python src/runs.py`` lists and diffs them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from daigt.config import REPO_ROOT, fingerprint
from daigt.errors import DaigtError

HISTORY = "runs/history.jsonl"  # blend.yaml's history: default, repo-relative


def git_commit() -> str | None:
    """The checkout's commit (with ``+dirty`` when files changed), or None outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def make_record(
    report: dict[str, Any],
    model_configs: dict[str, dict[str, Any]],
    blend: dict[str, Any],
    data: dict[str, Any] | None = None,
    overrides: dict[str, list[str]] | None = None,
) -> dict:
    """``data``: the training files' names and a fingerprint of the rows trained on (two runs on other data
    must not read the same). ``overrides``: the ``--set`` items each model was trained with, and the blend's."""
    general = report.get("generalization") or {}
    return {
        "data": data,
        "overrides": {k: v for k, v in (overrides or {}).items() if v},
        "run_id": report["run_id"],
        "commit": git_commit(),
        "picked": report["picked"],
        "picked_by": report.get("picked_by"),
        "n_train": report["n_train"],
        "models": {name: {"config_hash": fingerprint(cfg), "config": cfg} for name, cfg in model_configs.items()},
        "blend": {"config_hash": fingerprint(blend), "config": blend},
        "oof_auc": {name: row["oof_auc"] for name, row in report["candidates"].items()},
        "holdout_auc": {name: row.get("holdout_auc") for name, row in report["candidates"].items()},
        "generalization": general.get("summary"),
    }


def append(record: dict[str, Any], path: Path) -> Path:
    """Append one line (one write of a line: a crash leaves at most a cut line, which ``read`` skips)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
    return path


def read(path: Path) -> list[dict[str, Any]]:
    """Every record; a line cut short by a crash is skipped, not fatal."""
    if not path.is_file():
        raise DaigtError(f"no experiment history at {path}: every python src/blend.py run adds one record")
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def find(records: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    matches = [r for r in records if r["run_id"].startswith(run_id)]
    if len(matches) != 1:
        known = ", ".join(r["run_id"] for r in records[-5:])
        raise DaigtError(f"run '{run_id}' matches {len(matches)} runs (latest: {known})")
    return matches[0]


def config_diff(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf that differs between two nested configs: (dotted key, value in a, value in b)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += config_diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        return out
    return [] if a == b else [(path, a, b)]


SORTS = {
    "time": lambda r: r["run_id"],
    "oof": lambda r: r["oof_auc"].get(r["picked"]) or 0.0,
    "holdout": lambda r: r["holdout_auc"].get(r["picked"]) or 0.0,
    "loso": lambda r: ((r.get("generalization") or {}).get("loso", {}).get(r["picked"], {})).get("mean") or 0.0,
}


def table(records: list[dict], sort: str, model: str | None) -> str:
    """The runs as a markdown table (``src/runs.py``), those that blended ``model`` only, ordered by ``sort``."""
    rows = [r for r in records if model is None or model in r["models"]]
    rows.sort(key=SORTS[sort], reverse=sort != "time")
    lines = [
        "| run | commit | data | models | picked | OOF AUC | holdout AUC | held-out sources mean / min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        picked = r["picked"]
        loso = ((r.get("generalization") or {}).get("loso") or {}).get(picked)
        held = f"{loso['mean']:.4f} / {loso['min']:.4f}" if loso else "—"
        holdout = r["holdout_auc"].get(picked)
        lines.append(
            f"| {r['run_id']} | {r.get('commit') or '—'} | {data_label(r.get('data'))} | "
            f"{', '.join(sorted(r['models']))} | {picked} | "
            f"{r['oof_auc'][picked]:.4f} | {'—' if holdout is None else f'{holdout:.4f}'} | {held} |"
        )
    return "\n".join(lines)


def data_label(data: dict | None) -> str:
    """Files, sample and fingerprint of a run's data ('—' for records written before they were kept)."""
    if not data:
        return "—"
    sample = f" sample {data['sample']}" if data.get("sample") else ""
    return f"{' + '.join(data['files'])}{sample} ({data['rows']:,} rows, {data['fingerprint'][:8]})"


def diff(a: dict, b: dict) -> str:
    """The data, model and blend config keys that differ between two runs, and the --set items behind them."""
    lines = [f"{a['run_id']} -> {b['run_id']}"]
    if a.get("data") != b.get("data"):
        lines.append(f"  data: {data_label(a.get('data'))} -> {data_label(b.get('data'))}")
    for name in sorted(set(a["models"]) | set(b["models"])):
        if name not in a["models"] or name not in b["models"]:
            lines.append(f"  model {name}: {'added' if name in b['models'] else 'removed'}")
            continue
        for key, old, new in config_diff(a["models"][name]["config"], b["models"][name]["config"]):
            lines.append(f"  model {name}: {key}: {old!r} -> {new!r}")
    for key, old, new in config_diff(a["blend"]["config"], b["blend"]["config"]):
        lines.append(f"  blend: {key}: {old!r} -> {new!r}")
    if a.get("overrides", {}) != b.get("overrides", {}):  # the --set items behind the config changes above
        lines.append(f"  --set: {a.get('overrides') or 'none'} -> {b.get('overrides') or 'none'}")
    return "\n".join(lines) if len(lines) > 1 else f"{lines[0]}: same configs"

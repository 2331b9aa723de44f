"""Experiment history: every blend run, one row each; or which configs changed between two runs.

python src/runs.py                                # every run: time, commit, pick, OOF / holdout / held-out AUC
python src/runs.py --model tfidf_bpe --sort loso  # runs that blended tfidf_bpe, best held-out-source mean first
python src/runs.py diff 20261122-101500 20261122-113000   # config keys that differ (run ids, or prefixes)
python src/runs.py prune                          # delete fold folders kept from earlier configs

A retrain under a changed config keeps the folds it replaces (artifacts/<model>/.kept/<run key>/); going back
to that config restores them instead of retraining, until they are pruned.
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse
from pathlib import Path

from daigt import history
from daigt.artifacts import ModelArtifacts, model_names
from daigt.cli_options import add_output_options, configure_output
from daigt.config import PROJECT_CONFIG, load_config, repo_path
from daigt.errors import cli_entry
from daigt.project import ProjectConfig

SORTS = {
    "time": lambda r: r["run_id"],
    "oof": lambda r: r["oof_auc"].get(r["picked"]) or 0.0,
    "holdout": lambda r: r["holdout_auc"].get(r["picked"]) or 0.0,
    "loso": lambda r: ((r.get("generalization") or {}).get("loso", {}).get(r["picked"], {})).get("mean") or 0.0,
}


def table(records: list[dict], sort: str, model: str | None) -> str:
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
    lines = [f"{a['run_id']} -> {b['run_id']}"]
    if a.get("data") != b.get("data"):
        lines.append(f"  data: {data_label(a.get('data'))} -> {data_label(b.get('data'))}")
    for name in sorted(set(a["models"]) | set(b["models"])):
        if name not in a["models"] or name not in b["models"]:
            lines.append(f"  model {name}: {'added' if name in b['models'] else 'removed'}")
            continue
        for key, old, new in history.config_diff(a["models"][name]["config"], b["models"][name]["config"]):
            lines.append(f"  model {name}: {key}: {old!r} -> {new!r}")
    for key, old, new in history.config_diff(a["blend"]["config"], b["blend"]["config"]):
        lines.append(f"  blend: {key}: {old!r} -> {new!r}")
    if a.get("overrides", {}) != b.get("overrides", {}):  # the --set items behind the config changes above
        lines.append(f"  --set: {a.get('overrides') or 'none'} -> {b.get('overrides') or 'none'}")
    return "\n".join(lines) if len(lines) > 1 else f"{lines[0]}: same configs"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="*", help="nothing (list), diff RUN_A RUN_B, or prune")
    parser.add_argument(
        "--history", type=Path, default=repo_path(history.HISTORY), help="history file (default: runs/history.jsonl)"
    )
    parser.add_argument("--sort", choices=sorted(SORTS), default="time", help="order of the rows (default: time)")
    parser.add_argument("--model", help="only runs that blended this model (prune: only this model's kept folds)")
    parser.add_argument("--artifacts", type=Path, help="prune: the artifacts root (default: 'artifacts:' in project)")
    add_output_options(parser)
    args = parser.parse_args(argv)
    configure_output(args)
    if args.command == ["prune"]:
        root = args.artifacts or repo_path(load_config(ProjectConfig, PROJECT_CONFIG).artifacts)
        names = [args.model] if args.model else model_names(root)
        freed = {name: ModelArtifacts(root, name).prune_kept() for name in names}
        pruned = {name: size for name, size in freed.items() if size}
        mib = sum(pruned.values()) / 2**20
        print(f"pruned the kept folds of {len(pruned)} model(s) under {root}: {mib:.1f} MiB freed")
        return
    records = history.read(args.history)
    if not args.command:
        print(table(records, args.sort, args.model))
    elif args.command[0] == "diff" and len(args.command) == 3:
        print(diff(history.find(records, args.command[1]), history.find(records, args.command[2])))
    else:
        parser.error("use no command (list), diff RUN_A RUN_B, or prune")


if __name__ == "__main__":
    main()

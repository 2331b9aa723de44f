"""The blend report: per-model and per-fold AUC, candidates side by side, per-source AUC, ROC plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from daigt.data import binary_labels
from daigt.plots import plt, save_figure


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.4f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Blend report",
        "",
        f"Picked **{report['picked']}** (OOF AUC {_fmt(report['picked_oof_auc'])}); "
        f"{report['n_train']} training essays, {report['n_test']} test essays, {report['n_folds']} folds.",
        "",
    ]
    lines += ["## Candidates (OOF ROC-AUC)", "", "| candidate | OOF AUC | per-fold AUC |", "|---|---|---|"]
    for name, row in report["candidates"].items():
        folds = ", ".join(_fmt(v) for v in row.get("fold_auc", [])) or "—"
        lines.append(f"| {name} | {_fmt(row['oof_auc'])} | {folds} |")
    verdict = report.get("stacking")
    if verdict:
        gain, best = verdict["gain"], verdict["best_single"]
        lines += ["", "## Does stacking help?", ""]
        if gain > 0:
            lines.append(f"Yes: the stacker beats the best single model, **{best}**, by {gain:+.4f} OOF AUC.")
        else:
            lines.append(
                f"No: the stacker is {gain:+.4f} OOF AUC against the best single model, **{best}**. A stacker can "
                "only add what its inputs disagree on; the models' OOF rank correlations below show how much that is "
                "(near 1: one model carries the rest), and with one model it can only re-weight the meta-features."
            )
        names = list(verdict["oof_rank_correlation"])
        if len(names) > 1:
            lines += ["", "| OOF rank correlation | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
            for a in names:
                row = verdict["oof_rank_correlation"][a]
                lines.append(f"| {a} | " + " | ".join(f"{row[b]:.3f}" for b in names) + " |")
    if report["excluded"]:
        lines += ["", "## Left out", ""] + [f"- **{k}**: {v}" for k, v in report["excluded"].items()]
    if report.get("per_source"):
        names = list(report["candidates"])
        lines += [
            "",
            "## AUC per source",
            "",
            "Single-class sources are scored against every essay of the other class.",
            "",
            "| source | n | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for source, row in report["per_source"].items():
            lines.append(f"| {source} | {row['n']} | " + " | ".join(_fmt(row["auc"].get(n)) for n in names) + " |")
    lines += ["", "![ROC](roc.png)", ""]
    return "\n".join(lines)


def roc_plot(path: Path, labels: np.ndarray, curves: dict[str, np.ndarray], aucs: dict[str, float]) -> None:
    y = binary_labels(labels)
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(11, 4.8))
    for name, preds in curves.items():
        fpr, tpr, _ = roc_curve(y, preds)
        for ax in (full, zoom):
            ax.plot(fpr, tpr, lw=1.4, label=f"{name} ({aucs[name]:.4f})")
    full.plot([0, 1], [0, 1], "k:", lw=0.8)
    full.set(title="OOF ROC", xlabel="false positive rate (humans flagged)", ylabel="true positive rate")
    zoom.set(title="low-FPR region", xlabel="false positive rate", xlim=(0, 0.1), ylim=(0.5, 1.0))
    full.legend(loc="lower right", fontsize=8)
    for ax in (full, zoom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)

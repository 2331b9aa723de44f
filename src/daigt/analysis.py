"""Error analysis of the picked candidate's OOF scores: where it fails, on whom, and how well calibrated.

Writes ``analysis.md`` / ``analysis.json`` (decision coverage, confusion matrix at the cut, the most
confident mistakes per class with a snippet, AUC per source and per prompt) and two plots: score
histograms per class with the thresholds, and a calibration (reliability) curve.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve

from daigt.data import binary_labels
from daigt.decisions import AI, HUMAN, Thresholds, coverage_report, coverage_text, decide
from daigt.metrics import auc, per_group_auc
from daigt.plots import close, save_figure, subplots
from essayio import atomic

SNIPPET_CHARS = 160


def _snippet(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat[:SNIPPET_CHARS] + ("…" if len(flat) > SNIPPET_CHARS else "")


def confident_mistakes(train: pd.DataFrame, scores: np.ndarray, n: int) -> dict[str, list[dict[str, Any]]]:
    """Per true class, the essays the model was most sure about and got wrong."""
    y = binary_labels(train["label"])
    out: dict[str, list[dict[str, Any]]] = {}
    for cls, name, order in ((0, HUMAN, -1), (1, AI, 1)):  # humans scored highest, AI scored lowest
        idx = np.flatnonzero(y == cls)
        worst = idx[np.argsort(order * scores[idx], kind="stable")[:n]]
        out[name] = [
            {
                "id": str(train["id"].iloc[i]),
                "score": float(scores[i]),
                "source": str(train["source"].iloc[i]),
                "prompt": str(train["group"].iloc[i]),
                "snippet": _snippet(train["text"].iloc[i]),
            }
            for i in worst
        ]
    return out


def group_auc_table(labels: np.ndarray, scores: np.ndarray, groups: pd.Series) -> dict[str, dict[str, Any]]:
    values = groups.to_numpy()
    if not groups.str.len().gt(0).any():
        return {}
    values = np.where(groups.str.len().to_numpy() > 0, values, "(none)")  # rows without the column's value
    aucs = per_group_auc(labels, scores, values)
    return {g: {"n": int((values == g).sum()), "auc": aucs[g]} for g in sorted(set(values), key=natural_key)}


def natural_key(name: str) -> list[str | int]:
    """Sort "prompt 2" before "prompt 10" (Kaggle's prompt ids are numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(name))]


def analyse(train: pd.DataFrame, scores: np.ndarray, thresholds: Thresholds, n_mistakes: int = 5) -> dict[str, Any]:
    labels = train["label"].to_numpy(dtype=float)
    single_cut = Thresholds(thresholds.high, thresholds.high, thresholds.rule, thresholds.target_fpr, None)
    return {
        "oof_auc": auc(labels, scores),
        "thresholds": thresholds.to_dict(),
        "at_cut": coverage_report(labels, decide(scores, single_cut)),
        "with_band": coverage_report(labels, decide(scores, thresholds)),
        "confident_mistakes": confident_mistakes(train, scores, n_mistakes),
        "per_source": group_auc_table(labels, scores, train["source"]),
        "per_prompt": group_auc_table(labels, scores, train["group"]),
    }


def _fmt(value: float) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.4f}"


def analysis_markdown(result: dict[str, Any], picked: str) -> str:
    t = result["thresholds"]
    cm = result["at_cut"].get("confusion_matrix", {}).get("matrix", [[0, 0], [0, 0]])
    lines = [
        f"# Error analysis: {picked} (OOF AUC {_fmt(result['oof_auc'])})",
        "",
        f"Cut for 'ai': score ≥ {t['high']:.4f} (rule `{t['rule']}`, target human FPR {t['target_fpr']:.1%}).",
    ]
    if t["low"] < t["high"]:
        lines.append(
            f"UNKNOWN band: [{t['low']:.4f}, {t['high']:.4f}) (below it at most {t['target_fnr']:.1%} of AI essays)."
        )
    lines += [
        "",
        "## Confusion matrix at the cut (no band)",
        "",
        "| true \\ decided | human | ai |",
        "|---|---|---|",
        f"| human | {cm[0][0]} | {cm[0][1]} |",
        f"| ai | {cm[1][0]} | {cm[1][1]} |",
        "",
        "## Decisions with the UNKNOWN band",
        "",
        "```",
        coverage_text(result["with_band"]),
        "```",
        "",
        "## Most confident mistakes",
    ]
    for cls, title in ((HUMAN, "Human essays scored most AI-like"), (AI, "AI essays scored most human-like")):
        lines += ["", f"### {title}", "", "| id | score | source | prompt | snippet |", "|---|---|---|---|---|"]
        for m in result["confident_mistakes"][cls]:
            snippet = m["snippet"].replace("|", "\\|")
            lines.append(f"| {m['id']} | {m['score']:.4f} | {m['source']} | {m['prompt']} | {snippet} |")
    for key, title in (("per_source", "AUC per source"), ("per_prompt", "AUC per prompt")):
        if result[key]:
            lines += ["", f"## {title}", "", "| group | n | AUC |", "|---|---|---|"]
            lines += [f"| {g} | {row['n']} | {_fmt(row['auc'])} |" for g, row in result[key].items()]
    lines += ["", "![scores](scores.png)", "", "![calibration](calibration.png)", ""]
    return "\n".join(lines)


def plots(directory: Path, labels: np.ndarray, scores: np.ndarray, thresholds: Thresholds) -> None:
    y = binary_labels(labels)
    fig, (hist, calib) = subplots(1, 2, figsize=(11, 4.5))
    bins = np.linspace(0, 1, 41)
    hist.hist(scores[y == 0], bins=bins, alpha=0.6, label="human", color="tab:blue")
    hist.hist(scores[y == 1], bins=bins, alpha=0.6, label="ai", color="tab:red")
    hist.axvline(thresholds.high, color="k", lw=1, label=f"ai cut {thresholds.high:.3f}")
    if thresholds.low < thresholds.high:
        hist.axvspan(thresholds.low, thresholds.high, color="grey", alpha=0.2, label="unknown band")
    hist.set(yscale="log", title="OOF scores per class", xlabel="score", ylabel="essays (log)")
    hist.legend(fontsize=8)
    frac, mean = calibration_curve(y, np.clip(scores, 0, 1), n_bins=10, strategy="uniform")
    calib.plot([0, 1], [0, 1], "k:", lw=0.8)
    calib.plot(mean, frac, "o-", lw=1.4)
    calib.set(title="calibration (10 bins)", xlabel="mean score", ylabel="fraction AI", xlim=(0, 1), ylim=(0, 1))
    for ax in (hist, calib):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    for name, axes in (("scores.png", hist), ("calibration.png", calib)):
        extent = axes.get_tightbbox(fig.canvas.get_renderer()).transformed(fig.dpi_scale_trans.inverted())
        save_figure(fig, directory / name, close=False, bbox_inches=extent.expanded(1.02, 1.02))
    close(fig)


def write_analysis(
    directory: Path, train: pd.DataFrame, scores: np.ndarray, thresholds: Thresholds, picked: str
) -> dict[str, Any]:
    result = analyse(train, scores, thresholds)
    plots(directory, train["label"].to_numpy(dtype=float), scores, thresholds)
    atomic.write_json(directory / "analysis.json", result)
    atomic.write_text(directory / "analysis.md", analysis_markdown(result, picked))
    return result

"""What a decision costs whom: per writer group, the humans decided ``ai`` (false accusations), the AI essays
decided ``ai`` and the share abstained, at the shipped cut. Blend writes it for the training prompts (OOF) and
the locked holdout, predict for any file with a group column (``--by domain``), evaluate per held-out group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daigt.calibration import Calibration, calibration_error, cross_fitted, fit_platt
from daigt.data import binary_labels
from daigt.decisions import AI, HUMAN, REASONS, UNKNOWN, Thresholds, decide_with_reasons
from daigt.essay_stream import KEPT
from daigt.metrics import FPR_POINTS, auc, fpr_cut, tpr_points
from daigt.plots import save_figure, subplots
from daigt.shift import ShiftConfig, ShiftScorer, adversarial_auc
from essayio import atomic, outputs

ALL = "all"
NO_GROUP = "(none)"  # rows whose group column is empty


def _share(mask: np.ndarray, of: np.ndarray) -> float | None:
    return float(mask[of].mean()) if of.any() else None


def decision_row(
    decisions: np.ndarray, reasons: np.ndarray, labels: np.ndarray | None, scores: np.ndarray | None = None
) -> dict[str, Any]:
    """Shares decided and abstained; with ``labels``, per class; with ``scores`` too, the ranking's reach (AUC,
    and the AI caught at the cut that flags 1 % / 0.1 % of these very humans: what the shipped cut could catch
    if it were set on this group)."""
    decisions, reasons = np.asarray(decisions), np.asarray(reasons)
    every = np.ones(len(decisions), dtype=bool)
    row: dict[str, Any] = {
        "n": len(decisions),
        "decided_ai": _share(decisions == AI, every),
        "decided_human": _share(decisions == HUMAN, every),
        "abstained": _share(decisions == UNKNOWN, every),
        "reasons": {r: int((reasons == r).sum()) for r in REASONS},
    }
    if labels is not None:
        y = binary_labels(labels)
        row |= {
            "n_human": int((y == 0).sum()),
            "n_ai": int((y == 1).sum()),
            "humans_decided_ai": _share(decisions == AI, y == 0),
            "ai_decided_ai": _share(decisions == AI, y == 1),
            "humans_decided_human": _share(decisions == HUMAN, y == 0),
            "ai_decided_human": _share(decisions == HUMAN, y == 1),  # the misses a "human" answer carries
        }
        if scores is not None and len(np.unique(y)) == 2:
            row |= {"auc": auc(y, scores), "tpr_at_fpr": tpr_points(y, scores)}
    return row


def decision_table(
    decisions: np.ndarray,
    reasons: np.ndarray,
    labels: np.ndarray | None = None,
    groups: np.ndarray | pd.Series | None = None,
    scores: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """``all`` and, with ``groups``, one row per group (sorted by name); ``scores`` add AUC and TPR at FPR."""
    table = {ALL: decision_row(decisions, reasons, labels, scores)}
    if groups is not None:
        groups = np.asarray(groups).astype(str)
        groups = np.where(np.char.str_len(groups) == 0, NO_GROUP, groups)
        for group in sorted(set(groups.tolist())):
            member = groups == group
            table[group] = decision_row(
                decisions[member],
                reasons[member],
                None if labels is None else labels[member],
                None if scores is None or labels is None else np.asarray(scores)[member],
            )
    return table


def _pct(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.1%}"  # None or NaN: not measurable


def table_markdown(table: dict[str, dict[str, Any]], group_name: str = "group") -> str:
    labelled = "humans_decided_ai" in table[ALL]
    ranked = any("auc" in row for row in table.values())
    head = f"| {group_name} | essays | "
    head += "humans decided ai | AI decided ai | AI decided human | " if labelled else "decided ai | decided human | "
    head += "abstained | out of domain |"
    if ranked:
        head += " AUC | " + " | ".join(f"TPR @ {fpr:.1%} FPR" for fpr in FPR_POINTS) + " |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for group, row in table.items():
        ood = row["reasons"]["out_of_domain"] / max(1, row["n"])
        cells = (
            f"{_pct(row['humans_decided_ai'])} ({row['n_human']}) | {_pct(row['ai_decided_ai'])} ({row['n_ai']}) | "
            f"{_pct(row.get('ai_decided_human'))} | "
            if labelled
            else f"{_pct(row['decided_ai'])} | {_pct(row.get('decided_human'))} | "
        )
        line = f"| {group} | {row['n']} | {cells}{_pct(row['abstained'])} | {ood:.1%} |"
        if ranked:
            reach = row.get("tpr_at_fpr", {})
            auc_cell = f"{row['auc']:.4f}" if "auc" in row else "n/a"
            line += f" {auc_cell} | " + " | ".join(_pct(reach.get(str(fpr))) for fpr in FPR_POINTS) + " |"
        lines.append(line)
    return "\n".join(lines)


def table_plot(path: Path, table: dict[str, dict[str, Any]], title: str) -> None:
    """One bar group per writer group: humans decided ai, AI decided ai, abstained."""
    groups = list(table)
    series = [("humans decided ai", "humans_decided_ai", "tab:red"), ("AI decided ai", "ai_decided_ai", "tab:blue")]
    if "humans_decided_ai" not in table[ALL]:
        series = [("decided ai", "decided_ai", "tab:red")]
    series.append(("abstained", "abstained", "tab:grey"))
    fig, ax = subplots(figsize=(max(6.0, 0.9 * len(groups) + 2), 4))
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for i, (label, key, color) in enumerate(series):
        values = [np.nan if table[g].get(key) is None else table[g][key] for g in groups]
        ax.bar(x + i * width, values, width, label=label, color=color)
    ax.set_xticks(x + width * (len(series) - 1) / 2, groups, rotation=30, ha="right", fontsize=8)
    ax.set(ylim=(0, 1), ylabel="share of essays", title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def group_report_paths(report: Path) -> list[Path]:
    """The files ``--by-report report.md`` writes: the table, its JSON and its plot beside it."""
    return [report, report.with_suffix(".json"), report.with_suffix(".png")]


def check_group_report(report: Path) -> None:
    """The .json and .png beside the named .md may replace only files this project wrote (essayio.outputs)."""
    outputs.claim(report.parent, [p.name for p in group_report_paths(report)[1:]], "--by-report")


def write_group_report(report: Path, table: dict[str, dict[str, Any]], by: str, text: str) -> None:
    """The per-group table as .md, .json and .png (see check_group_report)."""
    markdown, data, plot = group_report_paths(report)
    check_group_report(report)
    report.parent.mkdir(parents=True, exist_ok=True)
    outputs.record(report.parent, [p.name for p in (markdown, data, plot)])
    atomic.write_text(markdown, f"# Decisions per {by}\n\n{text}\n\n![decisions]({report.stem}.png)\n")
    atomic.write_json(data, table)
    table_plot(plot, table, f"decisions per {by}")


RISK_POINTS = np.geomspace(1e-4, 0.2, 40)  # the false-positive rates a risk-coverage curve sweeps the ai cut over


def group_report(scored: pd.DataFrame, by: str, report: Path | None) -> str:
    """Decisions per group of the ``by`` column kept beside predict's rows (``KEPT`` + name; with labels, per
    class): the table's text, also written with ``report`` as .md, .json and .png."""
    labels = scored[KEPT + "label"].to_numpy(dtype=float) if KEPT + "label" in scored else None
    decided = scored["decision"].to_numpy(), scored["reason"].to_numpy()
    table = decision_table(*decided, labels, scored[KEPT + by].to_numpy(), scored["score"].to_numpy())
    text = table_markdown(table, by)
    if report is not None:
        write_group_report(report, table, by, text)
    return text


def risk_coverage(
    scores: np.ndarray, labels: np.ndarray, thresholds: Thresholds, texts: pd.Series, in_domain: np.ndarray
) -> dict[str, list[float]]:
    """The ai cut swept from strict to lax (the cut flagging each of ``RISK_POINTS`` of these humans by score
    alone), every other rule as shipped (in_domain, edge, length): the humans decided ``ai`` (risk) against the
    AI texts decided ``ai`` (coverage) at each cut."""
    y = binary_labels(labels)
    human, cuts = np.sort(scores[y == 0]), np.append(np.unique(scores), np.inf)
    risk, coverage = [], []
    for share in RISK_POINTS:
        cut = fpr_cut(human, cuts, share)
        swept = replace(thresholds, high=cut, low=min(thresholds.low, cut),
                        edge_high=max(cut, thresholds.edge_high or cut))  # fmt: skip
        decisions = decide_with_reasons(scores, swept, texts, in_domain)[0]
        risk.append(float(np.mean(decisions[y == 0] == AI)) if (y == 0).any() else float("nan"))
        coverage.append(float(np.mean(decisions[y == 1] == AI)) if (y == 1).any() else float("nan"))
    return {"humans_decided_ai": risk, "ai_decided_ai": coverage}


def risk_coverage_by_domain(
    train: pd.DataFrame, oof: np.ndarray, thresholds: Thresholds, in_domain: np.ndarray
) -> dict[str, dict[str, list[float]]]:
    """``risk_coverage`` of every domain with both classes, on its OOF rows."""
    labels, domains = train["label"].to_numpy(dtype=float), train["domain"].astype(str).to_numpy()
    curves = {}
    for domain in sorted(set(domains)):
        member = domains == domain
        if len(np.unique(binary_labels(labels[member]))) == 2:
            texts = train["text"][member]
            curves[domain] = risk_coverage(oof[member], labels[member], thresholds, texts, in_domain[member])
    return curves


def risk_coverage_plot(path: Path, curves: dict[str, dict[str, list[float]]], shipped: dict[str, Any]) -> None:
    """One curve per group: AI decided ``ai`` against humans decided ``ai`` as the ai cut moves; a dot at the
    shipped cut. Where a curve sits left and high, the group is decided; where it hugs the floor, it abstains."""
    fig, ax = subplots(figsize=(7.5, 5))
    for group, curve in curves.items():
        risk = np.maximum(np.asarray(curve["humans_decided_ai"], dtype=float), 1e-4)  # log axis: 0 drawn at 0.01 %
        (line,) = ax.plot(risk, curve["ai_decided_ai"], lw=1.2, label=group)
        row = shipped.get(group, {})
        if row.get("humans_decided_ai") is not None and row.get("ai_decided_ai") is not None:
            ax.plot(max(row["humans_decided_ai"], 1e-4), row["ai_decided_ai"], "o", color=line.get_color(), ms=4)
    title = "risk and coverage as the ai cut moves (dots: the shipped cut)"
    ax.set(xscale="log", xlim=(1e-4, 0.3), ylim=(0, 1), xlabel="humans decided ai (0 drawn at 0.01 %)",
           ylabel="AI texts decided ai", title=title)  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)


def shift_plot(path: Path, in_domain: dict[str, np.ndarray], out_of_domain_below: float) -> None:
    """Histograms of ``in_domain`` per set (training OOF, holdout, test...), with the out-of-domain cut."""
    fig, ax = subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    for name, values in in_domain.items():
        if len(values):
            ax.hist(values, bins=bins, alpha=0.5, density=True, label=f"{name} ({len(values)})")
    ax.axvline(out_of_domain_below, color="k", lw=1, label=f"out of domain below {out_of_domain_below:g}")
    ax.set(xlabel="in_domain", ylabel="density", title="how far essays are from the training essays")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


@dataclass
class TrustResult:
    """What blend saves (the shift scorer, the calibration) and reports about decisions beyond OOF AUC."""

    scorer: ShiftScorer
    calibration: Calibration
    report: dict[str, Any]
    in_domain: dict[str, np.ndarray]  # per scored set: training (OOF), holdout, test
    decisions: dict[str, np.ndarray]  # the shipped decisions: "oof" and, with a holdout, "holdout"


def assess(
    train: pd.DataFrame,
    scored: dict[str, pd.DataFrame],
    oof: np.ndarray,
    scores: dict[str, np.ndarray],
    thresholds: Thresholds,
    cfg: ShiftConfig,
    cache_dir: Path,
) -> TrustResult:
    """Fit the shift scorer (or read it from ``cache_dir``) and the calibration on the training essays; measure
    decisions, abstentions and calibration on OOF (per prompt) and the locked holdout; measure how far the test
    set is from train."""
    labels = train["label"].to_numpy(dtype=float)
    folds = train["fold"].to_numpy()
    scorer = ShiftScorer.fit_cached(train["text"], labels, folds, cfg, cache_dir)
    rows = {name: scorer.space.transform(frame["text"].tolist()) for name, frame in scored.items() if len(frame)}
    in_domain = {"training (OOF)": scorer.oof_in_domain}
    in_domain |= {
        name: scorer.in_domain(frame["text"], rows[name]) if len(frame) else np.zeros(0)
        for name, frame in scored.items()
    }
    calibration = fit_platt(labels, oof)
    decisions: dict[str, Any] = {}
    decided = decide_with_reasons(oof, thresholds, train["text"], scorer.oof_in_domain)
    shipped = {"oof": decided[0]}
    groups = train["group"] if train["group"].str.len().gt(0).any() else None
    decisions["oof"] = decision_table(*decided, labels, groups, oof)
    report: dict[str, Any] = {"decisions": decisions}
    if _several_domains(train):
        decisions["oof_by_domain"] = decision_table(*decided, labels, train["domain"], oof)
        report["risk_coverage"] = risk_coverage_by_domain(train, oof, thresholds, scorer.oof_in_domain)
    if len(scored.get("holdout", [])):
        shipped["holdout"] = _holdout_decisions(scored["holdout"], scores["holdout"], thresholds,
                                                in_domain["holdout"], decisions)  # fmt: skip
    report["calibration"] = {
        **calibration.to_dict(),
        "oof_score": calibration_error(labels, np.clip(oof, 0, 1)),
        "oof_probability_cross_fitted": calibration_error(labels, cross_fitted(labels, oof, folds)),
    }
    if len(scored.get("holdout", [])):
        report["calibration"]["holdout_probability"] = calibration_error(
            scored["holdout"]["label"].to_numpy(dtype=float), calibration(scores["holdout"])
        )
    out_share = thresholds.out_of_domain_below
    report["shift"] = {name: float(np.mean(v < out_share)) if len(v) else None for name, v in in_domain.items()}
    if "test" in scored:
        test = scored["test"]
        report["test_shift"] = {
            "n": len(test),
            "out_of_domain": report["shift"]["test"],
            "adversarial_auc": (
                adversarial_auc(scorer.rows_of_training(train["text"]), rows["test"], cfg.seed) if len(test) else None
            ),
        }
    return TrustResult(scorer, calibration, report, in_domain, shipped)


def _holdout_decisions(
    holdout: pd.DataFrame, scores: np.ndarray, thresholds: Thresholds, in_domain: np.ndarray, tables: dict[str, Any]
) -> np.ndarray:
    """The locked holdout's decisions; their tables (all, and per domain when it has several) go into ``tables``."""
    decided = decide_with_reasons(scores, thresholds, holdout["text"], in_domain)
    labels = holdout["label"].to_numpy(dtype=float)
    tables["holdout"] = decision_table(*decided, labels, None, scores)
    if _several_domains(holdout):
        tables["holdout_by_domain"] = decision_table(*decided, labels, holdout["domain"], scores)
    return decided[0]


def _several_domains(frame: pd.DataFrame) -> bool:
    return "domain" in frame and frame["domain"].astype(str).nunique() > 1


def trust_markdown(report: dict[str, Any]) -> str:
    """The report.md section: decisions per prompt and on the holdout, shift, calibration."""
    lines = ["## Trust: decisions beyond AUC", ""]
    decisions = report["decisions"]
    lines += ["Out of fold, per prompt (the shipped cut; abstained = unknown, any reason):", ""]
    lines += [table_markdown(decisions["oof"], "prompt"), "", "![decisions per prompt](trust_oof.png)", ""]
    if "oof_by_domain" in decisions:
        lines += ["Out of fold, per domain:", "", table_markdown(decisions["oof_by_domain"], "domain"), ""]
        lines += ["Risk and coverage per domain as the ai cut moves (OOF, every other rule as shipped):", "",
                  "![risk and coverage](risk_coverage.png)", ""]  # fmt: skip
    if "holdout" in decisions:
        lines += ["The locked holdout:", "", table_markdown(decisions["holdout"], "set"), ""]
    if "holdout_by_domain" in decisions:
        lines += ["The locked holdout, per domain:", "", table_markdown(decisions["holdout_by_domain"], "domain"), ""]
    shift = ", ".join(f"{name} {_pct(share)}" for name, share in report["shift"].items())
    lines += [f"Out of domain (in_domain under the cut): {shift}. ![in_domain](shift.png)", ""]
    if "test_shift" in report:
        t = report["test_shift"]
        adv = "n/a (too few test essays)" if t["adversarial_auc"] is None else f"{t['adversarial_auc']:.3f}"
        lines += [f"Test set ({t['n']} essays): train-vs-test classifier AUC {adv}, {_pct(t['out_of_domain'])} "
                  "out of domain.", ""]  # fmt: skip
    c = report["calibration"]
    lines += [
        f"`probability` = sigmoid({c['slope']:.3f} · logit(score) + {c['intercept']:.3f}). Expected calibration "
        f"error on OOF: score {c['oof_score']['ece']:.3f}, probability {c['oof_probability_cross_fitted']['ece']:.3f} "
        "(cross-fitted)" + (f", holdout {c['holdout_probability']['ece']:.3f}." if "holdout_probability" in c else "."),
        "",
    ]
    return "\n".join(lines)

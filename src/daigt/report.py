"""What a person reads: the blend report (candidates side by side: OOF, holdout, held-out sources; per-fold and
per-source AUC; ROC plot) and the generalization report (AUC per held-out source and prompt, its plot)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from daigt import attribution
from daigt.data import binary_labels
from daigt.metrics import FPR_POINTS, auc, per_group_auc
from daigt.plots import save_figure, subplots
from daigt.stacking import RANK_MEAN, STACKER, Candidate
from daigt.trust import trust_markdown
from essayio import atomic

PROTOCOL_TITLES = {
    "loso": "leave-one-source-out",
    "loso_attacked": "leave-one-source-out, held-out essays attacked",
    "lopo": "leave-one-prompt-out",
    "lopo_attacked": "leave-one-prompt-out, held-out essays attacked",
    "logo": "leave-one-group-out",
    "logo_attacked": "leave-one-group-out, held-out texts attacked",
}


def blend_report(
    train: pd.DataFrame,
    scored: dict[str, pd.DataFrame],
    candidates: dict[str, Candidate],
    chosen: Candidate,
    n_folds: int,
) -> dict[str, Any]:
    """The blend's figures: every candidate's OOF, per-fold and locked-holdout AUC, and per source."""
    labels, holdout = train["label"].to_numpy(dtype=float), scored["holdout"]
    report: dict[str, Any] = {
        "picked": chosen.name,
        "picked_oof_auc": chosen.oof_auc,
        "n_train": len(train),
        "n_test": len(scored["test"]),
        "n_holdout": len(holdout),
        "n_folds": n_folds,
        "candidates": {
            name: {
                "oof_auc": c.oof_auc,
                "fold_auc": _fold_aucs(labels, c.oof, train["fold"].to_numpy()),
                # the locked holdout: reported, never used to choose anything
                "holdout_auc": auc(holdout["label"], c.scored["holdout"]) if len(holdout) else None,
            }
            for name, c in candidates.items()
        },
    }
    if train["source"].str.len().gt(0).any():
        sources = train["source"].to_numpy()
        per_candidate = {n: per_group_auc(labels, c.oof, sources) for n, c in candidates.items()}
        report["per_source"] = {
            s: {"n": int((sources == s).sum()), "auc": {n: per_candidate[n][s] for n in candidates}}
            for s in sorted(set(sources))
        }
    return report


def summary_lines(report: dict[str, Any], out: Path) -> list[str]:
    """What blend says when done: each candidate's figures, the pick, where the report and ensemble are."""
    width = max(len(n) for n in report["candidates"])
    lines = []
    for name, row in report["candidates"].items():
        folds = " ".join(f"{v:.4f}" for v in row["fold_auc"])
        holdout = "  n/a " if row["holdout_auc"] is None else f"{row['holdout_auc']:.4f}"
        lines.append(f"{name:<{width}}  OOF AUC {row['oof_auc']:.4f}  holdout AUC {holdout}   folds: {folds}")
    lines.append(f"picked {report['picked']} (OOF AUC {report['picked_oof_auc']:.4f}) -> {out}")
    t = report["thresholds"]
    lines.append(f"report: {out.parent / 'report.md'}  plot: {out.parent / 'roc.png'}  errors: "
                 f"{out.parent / 'analysis.md'}")  # fmt: skip
    cut = f"ai cut {t['high']:.4f} ({t['cut_from']}), unknown below {t['low']:.4f}"
    lines.append(f"ensemble: {report['ensemble']}  ({cut}; predict and serve load ensemble/ unless given --ensemble)")
    return lines


def stacking_verdict(models: Iterable[str], candidates: dict[str, Candidate]) -> dict[str, Any]:
    """Does the stacker beat the best single model? With the models' OOF rank correlations as the evidence."""
    names = list(models)
    best = max(names, key=lambda n: np.nan_to_num(candidates[n].oof_auc, nan=-1.0))
    corr = pd.DataFrame({n: candidates[n].oof for n in names}).corr(method="spearman")
    return {
        "best_single": best,
        "best_single_auc": candidates[best].oof_auc,
        "stacker_auc": candidates[STACKER].oof_auc,
        "gain": candidates[STACKER].oof_auc - candidates[best].oof_auc,
        "oof_rank_correlation": {a: {b: float(corr.loc[a, b]) for b in names} for a in names},
    }


def _fold_aucs(labels: np.ndarray, preds: np.ndarray, folds: np.ndarray) -> list[float]:
    return [auc(labels[folds == k], preds[folds == k]) for k in np.unique(folds)]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.4f}"


def markdown(report: dict[str, Any]) -> str:
    # long: the report's sections in reading order; one template reads better than a dozen fragments
    general = report.get("generalization")
    picked_by = {
        "generalization": "best mean AUC on held-out sources",
        "oof": "best OOF AUC",
        "fallback": "pick_fallback: no held-out figures for these models",
    }
    lines = [
        "# Blend report",
        "",
        f"Picked **{report['picked']}** ({picked_by.get(report.get('picked_by', ''), 'named in blend.yaml')}); "
        f"{report['n_train']} training essays, {report['n_test']} test essays, {report['n_folds']} folds.",
        "",
    ]
    if general is None and report.get("generalization_missing"):
        lines += [f"No generalization figures: {report['generalization_missing']}.", ""]
    lines += [
        "## Candidates",
        "",
        f"OOF ROC-AUC on the {report['n_train']} training essays (in-distribution: every choice was made on it) "
        f"and ROC-AUC on the locked holdout ({report.get('n_holdout', 0)} essays no model trained on and no choice "
        "looked at). For essays from unseen generators and prompts, see the generalization section.",
        "",
        "| candidate | OOF AUC | holdout AUC | held-out sources: mean | min | per-fold AUC |",
        "|---|---|---|---|---|---|",
    ]
    loso = (general or {}).get("summary", {}).get("loso", {})
    for name, row in report["candidates"].items():
        folds = ", ".join(_fmt(v) for v in row.get("fold_auc", [])) or "—"
        held = loso.get(name, {})
        lines.append(
            f"| {name} | {_fmt(row['oof_auc'])} | {_fmt(row.get('holdout_auc'))} | {_fmt(held.get('mean'))} | "
            f"{_fmt(held.get('min'))} | {folds} |"
        )
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
    importance = report.get("stacker_importance")
    if importance:
        lines += [
            "",
            "## What the stacker uses",
            "",
            "Share of the stacker's total split gain per input, averaged over its fold models (`importance.png`).",
            "",
            "| input | gain share |",
            "|---|---|",
            *(f"| {name} | {share:.3f} |" for name, share in importance.items()),
            "",
            "![importance](importance.png)",
        ]
    left_out = {
        **report["excluded"],
        **{k: "listed in models: but never trained" for k in report.get("listed_not_trained", [])},
    }
    if left_out:
        lines += ["", "## Left out", ""] + [f"- **{k}**: {v}" for k, v in left_out.items()]
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
    if report.get("trust"):
        lines += ["", trust_markdown(report["trust"])]
    if report.get("attribution"):
        lines += ["", attribution.markdown(report["attribution"])]
    if general:
        lines += ["", generalization_markdown(general)]
    lines += ["", "![ROC](roc.png)", ""]
    return "\n".join(lines)


def roc_plot(path: Path, labels: np.ndarray, curves: dict[str, np.ndarray], aucs: dict[str, float]) -> None:
    y = binary_labels(labels)
    fig, (full, zoom) = subplots(1, 2, figsize=(11, 4.8))
    for name, preds in curves.items():
        fpr, tpr, _ = roc_curve(y, preds)
        for ax in (full, zoom):
            ax.plot(fpr, tpr, lw=1.4, label=f"{name} ({aucs[name]:.4f})")
    full.plot([0, 1], [0, 1], "k:", lw=0.8)
    full.set(title="OOF ROC", xlabel="false positive rate (humans flagged)", ylabel="true positive rate")
    zoom.set(title="low-FPR region", xlabel="false positive rate (humans flagged)", ylabel="true positive rate",
             xlim=(0, 0.1), ylim=(0.5, 1.0))  # fmt: skip
    full.legend(loc="lower right", fontsize=8)
    zoom.legend(loc="lower right", fontsize=8)
    for ax in (full, zoom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def _generalization_order(result: dict[str, Any]) -> dict[str, list[str]]:
    """Protocols in a fixed order, each with its candidates: the models, then the blends (JSON sorts keys)."""
    order = {}
    for protocol in (p for p in PROTOCOL_TITLES if p in result["summary"]):
        names = list(result["summary"][protocol])
        blends = [n for n in (RANK_MEAN, STACKER) if n in names]
        order[protocol] = [n for n in names if n not in blends] + blends
    return order


def _share(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.1%}"  # None or NaN: not measurable


def generalization_markdown(result: dict[str, Any]) -> str:
    decided_by = result.get("decided_by")
    lines = [
        "## Generalization: held-out sources, prompts and domains",
        "",
        "Each row holds one group out of training entirely (every base model and the stacker refitted without it)."
        f" Sources and prompts are scored against {result['n_reference_humans']} reference human essays that no "
        "split trains on; a held-out domain against its own human texts. This, not OOF, is what the default "
        "configuration is chosen on.",
    ]
    if decided_by:
        lines += ["", f"Decisions are {decided_by}'s at the shipped cut, thresholds and shift score refitted per "
                  "split: humans decided ai (false accusations), AI decided ai, humans and AI decided human "
                  "(the misses a human answer carries), and the share abstained."]  # fmt: skip
    for protocol, names in _generalization_order(result).items():
        summary = result["summary"][protocol]
        decisions = ["humans → ai", "AI → ai", "humans → human", "AI → human", "abstained"] if decided_by else []
        tpr = [f"TPR @ {_share(fpr)} FPR" for fpr in FPR_POINTS] if decided_by else []
        head = ["held out", "AI", "human", *names, *tpr, *decisions]
        lines += ["", f"### {PROTOCOL_TITLES[protocol]}", "", "| " + " | ".join(head) + " |"]
        lines.append("|---" * len(head) + "|")
        for row in (r for r in result["splits"] if r["protocol"] == protocol):
            cells = [f"{row['auc'][n]:.4f}" for n in names]
            if decided_by:
                reach = row.get("tpr_at_fpr", {}).get(decided_by, {})
                cells += [_share(reach.get(str(fpr))) for fpr in FPR_POINTS]
                d = row["decisions"]
                cells += [_share(d["humans_decided_ai"]), _share(d["ai_decided_ai"])]
                cells += [_share(d.get("humans_decided_human")), _share(d.get("ai_decided_human"))]
                cells += [_share(d["abstained"])]
            lines.append(f"| {row['group']} | {row['n_ai']} | {row['n_human']} | " + " | ".join(cells) + " |")
        for stat in ("mean", "min"):
            cells = " | ".join(f"**{summary[n][stat]:.4f}**" for n in names)
            lines.append(f"| **{stat}** | | | {cells} |" + " |" * (len(tpr) + len(decisions)))
    lines += attribution_held_out_markdown(result)
    return "\n".join([*lines, "", "![generalization](generalization.png)", ""])


def attribution_held_out_markdown(result: dict[str, Any]) -> list[str]:
    """Leave-one-generator-out for the second task: each held-out source's texts decided ai (and all its AI
    texts), attributed to its own family (right, where training still holds the family), a wrong named family,
    other, or unknown."""
    rows = [r for r in result["splits"] if r.get("attribution")]
    if not rows:
        return []
    lines = ["", "### Leave one generator out: attribution", "",
             "Each held-out source's AI texts, attributed by the second task trained without it. A family no longer "
             "in training is right only as other or unknown.", "",
             "| held out | family | in training | decided ai | right | wrong family | other | unknown "
             "| all AI: wrong family |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        a = row["attribution"]
        lines.append(
            f"| {row['group']} | {a['family']} | {'yes' if a.get('family_learnt') else 'no'} | {a['n_decided_ai']} | "
            f"{_share(a['right'])} | {_share(a['wrong_named'])} | {_share(a['other'])} | {_share(a['unknown'])} | "
            f"{_share(a['all_ai']['wrong_named'])} |"
        )
    return lines


def attribution_summary(result: dict[str, Any]) -> list[str]:
    """One line: the worst held-out generator's share attributed to a wrong named family."""
    rows = [r["attribution"] | {"group": r["group"]} for r in result["splits"] if r.get("attribution")]
    measured = [r for r in rows if r["wrong_named"] is not None]
    if not measured:
        return []
    worst = max(measured, key=lambda r: r["wrong_named"])
    return [f"leave one generator out (attribution): a wrong named family for at most {worst['wrong_named']:.1%} "
            f"of a held-out generator's texts decided ai ({worst['group']}; {len(measured)} generators)"]  # fmt: skip


def write_generalization(out: Path, result: dict[str, Any]) -> list[str]:
    """evaluate's results as .json, .md and .png at ``out``; the lines it says when done."""
    atomic.write_json(out, result)
    atomic.write_text(out.with_suffix(".md"), generalization_markdown(result))
    generalization_plot(out.with_suffix(".png"), result)
    lines = []
    for protocol, summary in result["summary"].items():
        best = max(summary, key=lambda n: summary[n]["mean"])
        table = "  ".join(f"{n} {s['mean']:.4f}/{s['min']:.4f}" for n, s in summary.items())
        lines.append(f"{PROTOCOL_TITLES[protocol]} (mean/min AUC): {table}  -> best mean: {best}")
    lines += [*decisions_summary(result), *attribution_summary(result)]
    seconds = f"  ({result['seconds']} s)" if "seconds" in result else ""
    return [*lines, f"generalization: {out.with_suffix('.md')}  plot: {out.with_suffix('.png')}{seconds}"]


def decisions_summary(result: dict[str, Any]) -> list[str]:
    """One line per protocol: the worst split's humans decided ai and the mean share of AI caught."""
    lines = []
    for protocol in (p for p in PROTOCOL_TITLES if p in result["summary"] and not p.endswith("_attacked")):
        rows = [r["decisions"] for r in result["splits"] if r["protocol"] == protocol and "decisions" in r]
        if rows:
            worst = max(r["humans_decided_ai"] for r in rows)
            caught = float(np.mean([r["ai_decided_ai"] for r in rows]))
            abstained = float(np.mean([r["abstained"] for r in rows]))
            lines.append(
                f"{PROTOCOL_TITLES[protocol]} decisions ({result['decided_by']}): humans decided ai at most "
                f"{worst:.1%}, AI decided ai {caught:.1%} and abstained {abstained:.1%} on average"
            )
    return lines


def generalization_plot(path: Path, result: dict[str, Any]) -> None:
    """AUC per held-out group, one marker per candidate; the blends drawn bold."""
    order = _generalization_order(result)
    protocols = list(order)
    widths = [max(2, sum(r["protocol"] == p for r in result["splits"])) for p in protocols]
    fig, axes = subplots(1, len(protocols), figsize=(3 + 1.1 * sum(widths), 4.8), squeeze=False,
                             gridspec_kw={"width_ratios": widths})  # fmt: skip
    for ax, protocol in zip(axes[0], protocols, strict=True):
        rows = [r for r in result["splits"] if r["protocol"] == protocol]
        x = np.arange(len(rows))
        for name in order[protocol]:
            bold = name in (RANK_MEAN, STACKER)
            values = [r["auc"][name] for r in rows]
            ax.plot(x, values, marker="o" if bold else ".", lw=2 if bold else 0.8, alpha=1 if bold else 0.7,
                    label=f"{name} (mean {np.mean(values):.3f})")  # fmt: skip
        ax.set_xticks(x, [r["group"][:22] for r in rows], rotation=35, ha="right", fontsize=8)
        ax.set(title=PROTOCOL_TITLES[protocol], ylabel="ROC-AUC on the held-out group", ylim=(None, 1.0))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)


def stacker_importance(boosters: list[Any]) -> dict[str, float]:
    """Each input's share of the total split gain, averaged over the fold boosters, largest first."""
    if not boosters:
        return {}
    names = boosters[0].feature_name()
    gains = np.mean(
        [b.feature_importance("gain") / max(b.feature_importance("gain").sum(), 1e-12) for b in boosters], 0
    )
    return {names[i]: float(gains[i]) for i in np.argsort(-gains)}


def importance_plot(path: Path, importance: dict[str, float], top: int = 20) -> None:
    names, shares = list(importance)[:top][::-1], list(importance.values())[:top][::-1]
    fig, ax = subplots(figsize=(7, 0.3 * len(names) + 1.5))
    ax.barh(names, shares, color=["C0" if n.startswith(("p_", "r_")) else "C1" for n in names])
    ax.set(title="stacker inputs: share of split gain (blue: models, orange: style)", xlabel="share of total gain")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    save_figure(fig, path)

"""Attack mode: a trained model's held-out folds scored clean, under each op alone, and under the whole recipe.

Every essay is scored by the fold model that never trained on it (as in OOF), after the perturbation and
after whatever deobfuscation the model was trained with. Attacks draw their randomness from a copy index
no training copy uses. Writes ``artifacts/<model>/attack/`` (attack.md, attack.json, attack.png).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augment.recipe import Augmenter, Recipe
from daigt.artifacts import ModelArtifacts
from daigt.errors import DaigtError
from daigt.hardening import deobfuscate_texts
from daigt.metrics import auc
from daigt.plots import save_figure, subplots
from daigt.project import Project
from essayio import atomic, console

ATTACK_COPY = 10_000  # never used by training copies (1..N)
CLEAN, WHOLE = "clean", "whole recipe"


def attack(project: Project, model: str, recipe: Recipe, sample: int | None, seed: int = 0) -> dict[str, Any]:
    if sample is not None and sample < 2:  # 0 is not "everything"
        raise DaigtError(f"--essays {sample}: give the number of essays to score (e.g. 500)")
    train, _ = project.train_frame()
    if sample and sample < len(train):
        train = train.groupby(train["label"] >= 0.5, group_keys=False).sample(
            frac=sample / len(train), random_state=seed
        )
    train = train.reset_index(drop=True)
    n_folds = project.folds.n_folds
    models, deobfuscation = [], []
    for k in range(n_folds):
        folder = ModelArtifacts(project.artifacts, model).fold(k)
        if not folder.exists():
            raise DaigtError(f"{folder.path}: no trained fold; run python src/train_fold.py --fold all --model {model}")
        models.append(folder.load_model())
        deobfuscation.append(folder.deobfuscation())
    conditions = [CLEAN, *(s.op for s in recipe.steps), WHOLE]
    ids, labels = train["id"].tolist(), train["label"].to_numpy(dtype=float)
    rows: dict[str, float] = {}
    for condition in console.bar(conditions, desc=f"attack {model}", unit="attack"):
        if condition == CLEAN:
            texts = train["text"]
        else:
            attack_recipe = recipe if condition == WHOLE else recipe.only(condition)
            texts = pd.Series(Augmenter(attack_recipe).apply(ids, train["text"].tolist(), ATTACK_COPY)[0])
        preds = np.zeros(len(train))
        for k in range(n_folds):
            rows_k = (train["fold"] == k).to_numpy()
            frame = train[rows_k].assign(text=deobfuscate_texts(texts[rows_k], deobfuscation[k]))
            preds[rows_k] = models[k].predict(frame)
        rows[condition] = auc(labels, preds)
    table = [{"condition": c, "auc": a, "delta": a - rows[CLEAN]} for c, a in rows.items()]  # a list keeps the order
    return {"model": model, "recipe": recipe.name, "n_essays": len(train), "conditions": table}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Attack report: {report['model']} (recipe `{report['recipe']}`, {report['n_essays']} held-out essays)",
        "",
        "| condition | OOF AUC | change vs clean |",
        "|---|---|---|",
    ]
    for row in report["conditions"]:
        lines.append(f"| {row['condition']} | {row['auc']:.4f} | {row['delta']:+.4f} |")
    return "\n".join([*lines, "", "![attack](attack.png)", ""])


def plot(path: Path, report: dict[str, Any]) -> None:
    names = [row["condition"] for row in report["conditions"]]
    values = [row["auc"] for row in report["conditions"]]
    fig, ax = subplots(figsize=(7, 0.32 * len(names) + 1.2))
    colors = ["tab:green" if n == CLEAN else "tab:red" if n == WHOLE else "tab:blue" for n in names]
    ax.barh(names[::-1], values[::-1], color=colors[::-1])
    ax.axvline(values[names.index(CLEAN)], color="k", lw=0.8, ls=":")
    ax.set(xlim=(max(0.5, min(values) - 0.02), 1.0), xlabel="OOF ROC-AUC", title=f"{report['model']} under attack")
    fig.tight_layout()
    save_figure(fig, path)


def write_report(directory: Path, report: dict[str, Any]) -> None:
    """``attack.json``, ``attack.md`` and ``attack.png``, published together in one rename."""
    with atomic.atomic_dir(directory) as tmp:
        atomic.write_json(tmp / "attack.json", report)
        atomic.write_text(tmp / "attack.md", markdown(report))
        plot(tmp / "attack.png", report)

"""``blend``: models' artifacts -> candidates (each model, rank mean, stacker) -> the picked one as a validated
submission.csv, with report.md/json, plots, the error analysis and the saved ensemble for predict/serve."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from daigt.analysis import write_analysis
from daigt.artifacts import ModelArtifacts, data_key
from daigt.attribution import AttributionConfig, Attributor, attribution_report, confusion_plot, fit_attributor
from daigt.config import fingerprint, frame_fingerprint, repo_path
from daigt.decisions import DecisionConfig, Thresholds, choose_thresholds, held_out_thresholds
from daigt.errors import DaigtError
from daigt.hardening import attacked
from daigt.history import HISTORY, make_record
from daigt.history import append as append_history
from daigt.inference import Ensemble, save_ensemble
from daigt.project import Project
from daigt.report import blend_report, importance_plot, markdown, roc_plot, stacker_importance, stacking_verdict
from daigt.schema import to_dict
from daigt.shift import MIN_TEST_FOR_SHIFT, ShiftConfig
from daigt.stacking import (
    BEST_OOF,
    RANK_MEAN,
    STACKER,
    Candidate,
    FeatureConfig,
    ModelPredictions,
    StackerConfig,
    build_candidates,
    check_pick,
    collect_models,
    pick_candidate,
)
from daigt.stylometry import StyleMemo, selected_groups
from daigt.submission import build_submission, validate_submission
from daigt.trust import TrustResult, assess, risk_coverage_plot, shift_plot, table_plot
from essayio import atomic, console, outputs
from essayio.publish import publication


@dataclass
class BlendConfig:
    """configs/blend.yaml."""

    PROFILE_SECTION: ClassVar[str] = "blend"  # what a profile's blend: section overlays (config.py)

    features: FeatureConfig = field(default_factory=FeatureConfig)
    stacker: StackerConfig = field(default_factory=StackerConfig)
    # a candidate's name, or auto: among candidates with OOF AUC >= min_oof_auc, the best mean held-out-source
    # AUC in the generalization results when they match this blend's models, data and stacker
    # (src/evaluate.py), else pick_fallback (with a warning)
    pick: str = "auto"
    min_oof_auc: float = 0.0  # auto picks only among candidates at or above this OOF AUC
    # what auto picks without matching held-out results: a candidate's name (used when it is a candidate), or
    # best_oof. Not best_oof by default: OOF is in-distribution and picks the worse generalizer.
    pick_fallback: str = RANK_MEAN
    generalization: str = "submissions/generalization.json"  # what src/evaluate.py wrote
    output: str = "submissions/submission.csv"  # with report.md/json, plots and analysis beside it
    ensemble: str = "ensemble"  # what predict/serve load
    history: str = HISTORY  # every run appends a record here (python src/runs.py lists and diffs them)
    decisions: DecisionConfig = field(default_factory=DecisionConfig)
    shift: ShiftConfig = field(default_factory=ShiftConfig)  # in_domain: how far an essay is from training
    # the second task: which generator family wrote a text decided ai (attribution.py; never in the submission)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)

    def stacking_key(self) -> str:
        """What of this config the generalization figures depend on (the stacker and its features)."""
        return fingerprint({"features": to_dict(self.features), "stacker": to_dict(self.stacker)})


def experiment_ensemble(out: Path, given: Path | None, experiment: bool) -> Path | None:
    """Where an ensemble goes: ``given``; else, for an experiment (its own --out or --artifacts), beside its
    submission, so it never replaces what predict and serve load; else None (the config's ``ensemble:``)."""
    if given is None and experiment:
        return out.parent / "ensemble"
    return given


def data_identity(project: Project, train: pd.DataFrame) -> dict[str, Any]:
    """What a run trained on, for the history: the files' names and the rows' fingerprint."""
    files = [p.name for p in project.train_paths]
    return {"files": files, "sample": project.sample, "rows": len(train), "fingerprint": data_key(train)}


def _fallback_by(cfg: BlendConfig) -> str:
    return "oof" if cfg.pick_fallback == BEST_OOF else "fallback"


def read_generalization(
    path: Path, cfg: BlendConfig, models: dict[str, Any], train: pd.DataFrame, artifacts: Path
) -> tuple[dict[str, Any] | None, str]:
    """The generalization results if they were computed for these models, data and stacker; else why not."""
    if not path.is_file():
        return None, f"no {path}: run python src/evaluate.py"
    result = json.loads(path.read_text())
    keys = {name: ModelArtifacts(artifacts, name).fold(0).metrics().get("config_key") for name in models}
    computed = result.get("models", {})
    if sorted(computed) != sorted(keys):
        return None, f"{path} was computed for models {sorted(computed)}, not {sorted(keys)}"
    changed = [name for name in keys if computed[name] != keys[name]]
    if changed:
        return None, f"{path} was computed before the config of {', '.join(changed)} changed"
    if result.get("blend") != cfg.stacking_key():
        return None, f"{path} was computed with another stacker config"
    if result.get("data") != frame_fingerprint(train, ["id", "text", "label"]):
        return None, f"{path} was computed on other training data"
    return result, ""


@dataclass
class BlendResult:
    submission: pd.DataFrame
    report: dict[str, Any]
    out_path: Path


@dataclass
class BlendInputs:
    """What the blend works from: the project's essays and the listed models' predictions on them."""

    train: pd.DataFrame
    scored: dict[str, pd.DataFrame]  # "test", "holdout": rows with text
    models: dict[str, ModelPredictions]
    excluded: dict[str, str]  # model -> why it is left out
    untrained: list[str]  # listed in models: but never trained

    @property
    def test(self) -> pd.DataFrame:
        return self.scored["test"]

    @property
    def labels(self) -> np.ndarray:
        return self.train["label"].to_numpy(dtype=float)


class _Clock:
    """Stage lines with the seconds since the blend started (it runs minutes at competition size)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def stage(self, what: str) -> None:
        console.stage(f"[blend {time.perf_counter() - self.started:6.1f}s] {what}")


# what a blend writes beside its submission (publish checks the actual ones again; this is said before the work)
SIDE_OUTPUTS = ("report.json", "report.md", "analysis.md", "roc.png", "trust_oof.png", "shift.png")
SIDE_OUTPUTS += ("risk_coverage.png", "importance.png", "attribution.png")


def blend(
    project: Project,
    cfg: BlendConfig,
    out_path: Path,
    sample: Path | None = None,
    ensemble_dir: Path | None = None,
    history: Path | None = None,
    overrides: Sequence[str] = (),
) -> BlendResult:
    """Gather the inputs -> build the candidates -> pick one -> decide and measure trust -> report and publish
    (all outputs together or none) -> record the run in the history."""
    clock = _Clock()
    ensemble_dir = ensemble_dir or repo_path(cfg.ensemble)
    for folder in {out_path.parent, ensemble_dir.parent}:
        blocker = next((f for f in (folder, *folder.parents) if f.exists() and not f.is_dir()), None)
        if blocker is not None:  # before minutes of work, not at the end
            raise DaigtError(f"{blocker} is a file where the output needs a folder: move it or pass another --out")
    outputs.check_replaceable(ensemble_dir, "--ensemble", project.input_paths())  # before minutes of work
    outputs.claim(out_path.parent, SIDE_OUTPUTS, "--out")
    inputs = gather_inputs(project, cfg, clock)
    candidates = blend_candidates(inputs, project, cfg, clock)
    clock.stage("picking, validating the submission, writing the report, plots and ensemble/")
    generalization, why_not = read_generalization(
        repo_path(cfg.generalization), cfg, inputs.models, inputs.train, project.artifacts
    )
    if cfg.pick == "auto" and generalization is None:
        console.warn(f"pick: auto falls back to pick_fallback ({cfg.pick_fallback}) — {why_not}")
    chosen = pick_candidate(candidates, cfg.pick, generalization, cfg.min_oof_auc, cfg.pick_fallback)
    submission = build_submission(inputs.test["id"], chosen.test)
    sample = sample or project.sample_submission_path()
    validate_submission(submission, inputs.test["id"], sample)
    report = blend_report(inputs.train, inputs.scored, candidates, chosen, project.folds.n_folds)
    report |= {
        "excluded": inputs.excluded,
        "listed_not_trained": inputs.untrained,
        "validated_against": str(sample) if sample else None,
        "picked_by": cfg.pick if cfg.pick != "auto" else ("generalization" if generalization else _fallback_by(cfg)),
        "generalization": generalization,
        "generalization_missing": why_not or None,
        "stacking": stacking_verdict(inputs.models, candidates),
    }
    thresholds = cut_thresholds(inputs.labels, chosen, cfg.decisions, generalization, why_not)
    report["thresholds"] = thresholds.to_dict()
    clock.stage("the shift score, calibrated probabilities and decisions per group")
    trust = assess_trust(inputs, chosen, thresholds, cfg, project)
    report["trust"] = trust.report
    attributor = attribute(inputs, trust, cfg.attribution, report, clock)
    report["ensemble"] = str(ensemble_dir)
    report["run_id"] = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]  # to the millisecond: unique per run
    ensemble = Ensemble(
        chosen, cfg.features, thresholds, project.folds.n_folds, report["run_id"], cfg.shift, trust.scorer,
        trust.calibration, attributor,
    )  # fmt: skip
    publish(out_path, ensemble_dir, report, submission, inputs, candidates, ensemble, trust, project)
    folds = {name: ModelArtifacts(project.artifacts, name).fold(0) for name in inputs.models}
    configs = {name: fold.config() for name, fold in folds.items()}
    given = {name: fold.metrics().get("overrides", []) for name, fold in folds.items()} | {"blend": list(overrides)}
    record = make_record(report, configs, to_dict(cfg), data_identity(project, inputs.train), given)
    report["history"] = str(append_history(record, history or repo_path(cfg.history)))
    return BlendResult(submission, report, out_path)


def cut_thresholds(
    labels: np.ndarray,
    chosen: Candidate,
    cfg: DecisionConfig,
    generalization: dict[str, Any] | None,
    why_not: str,
) -> Thresholds:
    """The cuts from the picked candidate's OOF; with ``cut_from: held_out``, raised to the conformal cuts on the
    humans of every held-out group of the generalization results (their scores by the same candidate)."""
    thresholds = choose_thresholds(labels, chosen.oof, cfg)
    if cfg.cut_from == "oof":
        return thresholds
    # each held-out group's humans, scored by models that never saw the group (evaluate keeps them for the
    # groups that bring their own humans: domains or genres, not sources and prompts)
    humans = [row["human_scores"][chosen.name] for row in (generalization or {}).get("splits", [])
              if chosen.name in row.get("human_scores", {})]  # fmt: skip
    if not humans:
        why = why_not or f"they hold no held-out human scores of {chosen.name} (turn on evaluate's logo protocol)"
        console.warn(f"decisions.cut_from: held_out, but no generalization results to set it from — {why}: the "
                     "ai cut is set on OOF alone")  # fmt: skip
        return thresholds
    return held_out_thresholds(thresholds, np.concatenate(humans), cfg)


def attribute(
    inputs: BlendInputs,
    trust: TrustResult,
    cfg: AttributionConfig,
    report: dict[str, Any],
    clock: _Clock,
) -> Attributor | None:
    """The second task, trained fold by fold on the AI texts whose source names a family; its figures go into
    ``report`` (the texts decided ai are the picked candidate's, OOF and on the holdout)."""
    if not cfg.enabled:
        return None
    clock.stage("generator attribution: fold by fold on the AI texts, then on all of them")
    fitted = fit_attributor(inputs.train, cfg)
    if fitted is None:
        report["attribution"] = None
        console.stage("[blend] attribution: fewer than two generator families in training; none saved")
        return None
    attributor, oof = fitted
    decided = trust.decisions  # the shipped decisions trust already made, OOF and on the holdout
    holdout = inputs.scored["holdout"]
    report["attribution"] = attribution_report(
        inputs.train, attributor, oof, decided["oof"], holdout, decided.get("holdout")
    )
    return attributor


def gather_inputs(project: Project, cfg: BlendConfig, clock: _Clock) -> BlendInputs:
    """The essays and the fold predictions of each complete model `models:` lists; which are left out, and why."""
    clock.stage("reading the training data and the models' fold predictions")
    train, _ = project.train_frame()
    scored = {"test": project.test_frame(), "holdout": project.holdout_frame()}
    models, excluded = collect_models(
        project.artifacts, train, {s: f["id"] for s, f in scored.items()}, project.folds.n_folds, project.train_command
    )
    listed = {Path(name).stem for name in project.models}
    unlisted = [name for name in [*models, *excluded] if name not in listed]
    models = {name: m for name, m in models.items() if name in listed}  # models: decides what is blended
    excluded = {name: why for name, why in excluded.items() if name in listed}
    for name, reason in excluded.items():
        console.warn(f"model '{name}' left out of the blend — {reason}")
    untrained = [name for name in listed if name not in models and name not in excluded]
    for name in untrained:
        console.warn(f"model '{name}' is listed in models: but has no folds under {project.artifacts} — "
                     f"run `{project.train_command(name)}`")  # fmt: skip
    if models:  # which models, and why: always said (on stdout, with the figures)
        console.say(f"[blend] models: {', '.join(models)} (from models: in the project config"
                    + (f"; trained under {project.artifacts} but not listed: {', '.join(unlisted)}" if unlisted else "")
                    + ")")  # fmt: skip
    if not models:
        raise DaigtError(f"no complete model under {project.artifacts}: run `{project.train_command()}` first")
    check_pick(cfg.pick, cfg.pick_fallback, [*models, RANK_MEAN, STACKER])
    return BlendInputs(train, scored, models, excluded, untrained)


def blend_candidates(inputs: BlendInputs, project: Project, cfg: BlendConfig, clock: _Clock) -> dict[str, Candidate]:
    """Each model, their rank mean and the nested stacker (on style features when the config asks for them),
    all on the same OOF rows."""
    recipe = project.config.stacker_attack
    attacked_texts = attacked(inputs.train, recipe, project.cache_dir)["text"] if recipe else None
    style = None
    if selected_groups(cfg.features.meta):  # every essay's style at once (one pool of processes), kept on disk
        style = StyleMemo(cfg.features.meta, cfg.features.stylometry, project.cache_dir)
        every = [inputs.train["text"], *(f["text"] for f in inputs.scored.values())]
        texts = pd.concat(every if attacked_texts is None else [*every, attacked_texts], ignore_index=True)
        clock.stage(f"style features of {texts.nunique():,} essays")
        style(texts)
        clock.stage(f"... {style.from_cache:,} of them read from {style.path}")
    clock.stage(f"the nested stacker over {len(inputs.models)} models, {len(inputs.train)} essays")
    return build_candidates(
        inputs.models, inputs.train, inputs.scored, cfg.features, cfg.stacker, style, attacked_texts, project.cache_dir
    )


def assess_trust(
    inputs: BlendInputs, chosen: Candidate, thresholds: Thresholds, cfg: BlendConfig, project: Project
) -> TrustResult:
    """The shift score, the calibration and the decisions per group (trust.py); a warning for a far test set."""
    trust = assess(inputs.train, inputs.scored, chosen.oof, chosen.scored, thresholds, cfg.shift, project.cache_dir)
    far = trust.report.get("test_shift", {}).get("out_of_domain")
    if far is not None and far > cfg.shift.far_test_share and len(inputs.test) >= MIN_TEST_FOR_SHIFT:
        console.warn(
            f"{far:.0%} of the test essays are out of domain (over shift.far_test_share "
            f"{cfg.shift.far_test_share:.0%}): the test set is far from the training essays"
        )
    return trust


def publish(
    out_path: Path,
    ensemble_dir: Path,
    report: dict[str, Any],
    submission: pd.DataFrame,
    inputs: BlendInputs,
    candidates: dict[str, Candidate],
    ensemble: Ensemble,
    trust: TrustResult,
    project: Project,
) -> None:
    """Submission, report, analysis, plots and ensemble/: published together or not at all (essayio.publish).
    Nine parameters: each is one of the outputs, or what they are made of (the staging area needs them all)."""
    chosen, thresholds = ensemble.picked, ensemble.thresholds
    labels = inputs.labels
    home, named = out_path.parent, [out_path.name]
    with publication(home, report["run_id"], "--out", project.input_paths(), named) as staging:
        staged_ensemble = staging.folder_for(ensemble_dir, "--ensemble")
        save_ensemble(staged_ensemble, project.artifacts, inputs.models, ensemble, published_at=ensemble_dir)
        if report.get("attribution"):
            figures = report["attribution"]
            confusion_plot(staging.dir / "attribution.png", figures["oof"], figures["classes"], "out of fold")
        table_plot(staging.dir / "trust_oof.png", trust.report["decisions"]["oof"], "out of fold, per prompt")
        shift_plot(staging.dir / "shift.png", trust.in_domain, thresholds.out_of_domain_below)
        if "risk_coverage" in trust.report:
            shipped = trust.report["decisions"]["oof_by_domain"]
            risk_coverage_plot(staging.dir / "risk_coverage.png", trust.report["risk_coverage"], shipped)
        write_analysis(staging.dir, inputs.train, chosen.oof, thresholds, chosen.name)
        curves = {n: c.oof for n, c in candidates.items()}
        roc_plot(staging.dir / "roc.png", labels, curves, {n: c.oof_auc for n, c in candidates.items()})
        # what the stacker uses, only when it is what is submitted (a rank mean uses no learnt weights)
        picked_stacker = chosen.name == STACKER
        report["stacker_importance"] = stacker_importance(chosen.boosters or []) if picked_stacker else {}
        if report["stacker_importance"]:
            importance_plot(staging.dir / "importance.png", report["stacker_importance"])
        atomic.write_json(staging.dir / "report.json", report)
        atomic.write_text(staging.dir / "report.md", markdown(report))
        atomic.write_csv(staging.dir / out_path.name, submission)

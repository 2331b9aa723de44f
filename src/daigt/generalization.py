"""Generalization protocols: the whole pipeline scored on essays from a source or a prompt it never trained on.

OOF AUC is in-distribution: every source and prompt of the test rows was in training. The essays a detector
meets come from generators and prompts it never saw. Here each split holds one group out:

- leave-one-source-out (``loso``): every ``source`` that holds AI essays, in turn;
- leave-one-prompt-out (``lopo``): every prompt (the canonical ``group``) with enough essays, in turn;
- leave-one-group-out (``logo``): every value of a configured canonical column (``domain`` by default: the kind
  of writing, e.g. essays, news, reviews), humans and AI together, in turn. The held-out group brings its own
  human texts, so it is scored on itself.

For sources and prompts the negatives are fixed: a share of the human essays (whole duplicate clusters), the
*reference humans*, drawn within each domain, is held out of every split and scored with each held-out group
(of the held-out group's domains only: an essay generator is measured against human essays, not human news),
so no essay is scored by a model that saw it (nor a near-duplicate of it). Inside a split the whole pipeline is
refitted: every base model on inner folds of the split's training rows (their OOF trains the stacker, nested as
in blend), then the candidates of blend (each model, the rank mean, the stacker) score the held-out rows. The
held-out rows play the test set, so transductive options (vocabularies fitted on test, pseudo-labels) see them
as they would see Kaggle's test.

Beside AUC, each split reports what a user would get from the shipped candidate's decisions on its held-out
essays (trust.py): thresholds and the shift score refitted on the split's training rows, then the humans and
the AI texts decided ``ai`` and the share abstained.

The locked holdout (project.yaml) is never part of any split: choices made on these figures stay honest there.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from daigt.artifacts import ModelArtifacts
from daigt.attribution import AttributionConfig, fit_attributor, held_out_generator
from daigt.blending import BlendConfig
from daigt.cli_options import ProjectArgs
from daigt.config import fingerprint, frame_fingerprint, load_yaml, repo_path
from daigt.data import CANONICAL, binary_labels
from daigt.decisions import AI, Thresholds, choose_thresholds, decide_with_reasons, held_out_thresholds
from daigt.errors import DaigtError
from daigt.families import FitContext
from daigt.fold_trainer import FoldTrainer, fit_and_score
from daigt.folds import FoldConfig, assign_folds
from daigt.hardening import ATTACKED, attacked, for_fold
from daigt.metrics import auc, tpr_points
from daigt.model_configs import load_model_config
from daigt.project import Project
from daigt.report import PROTOCOL_TITLES
from daigt.schema import Invalid, to_dict
from daigt.shift import ShiftScorer, count_texts
from daigt.stacking import RANK_MEAN, STACKER, Candidate, ModelPredictions, build_candidates
from daigt.stylometry import StyleMemo
from daigt.trust import decision_row
from essayio import console

PROTOCOL_COLUMNS = {"loso": "source", "lopo": "group"}  # logo's column comes from its config
TRAIN_ATTACKED = "train_attacked"  # a split's inner-fold OOF rows after the stacker's attack recipe
# the protocol whose held-out humans a held-out cut is set on: its groups bring their own humans, each scored
# once (the reference humans of sources and prompts are scored in every split, so they would count many times)
HELD_OUT_HUMANS = "logo"


@dataclass
class ProtocolSpec:
    min_essays: int = 50  # a group is held out alone only with this many essays (AI essays, for sources)


@dataclass
class GroupProtocolSpec(ProtocolSpec):
    column: str = "domain"  # the canonical column whose values are held out in turn (map yours under columns:)
    # values held out together under one name (e.g. review_yelp and game_review as 'reviews'): a genre is held
    # out whole, so no sibling domain of it trains the split; a value not listed is a group of its own
    groups: dict[str, str] = field(default_factory=dict)


@dataclass
class EvaluateConfig:
    """configs/evaluate.yaml."""

    PROFILE_SECTION: ClassVar[str] = "evaluate"  # what a profile's evaluate: section overlays (config.py)

    loso: ProtocolSpec | None = field(default_factory=ProtocolSpec)  # leave-one-source-out (null: off)
    # leave-one-prompt-out (null: off)
    lopo: ProtocolSpec | None = field(default_factory=lambda: ProtocolSpec(min_essays=200))
    # splits only where the column has two or more values with both classes (e.g. --train train.csv ood_dev.csv)
    logo: GroupProtocolSpec | None = field(default_factory=lambda: GroupProtocolSpec(min_essays=100))
    reference_humans: float = 0.25  # share of human essays held out of every split as the common negatives
    inner_folds: int = 3  # folds inside a split's training rows (the nested stacker's OOF)
    # true: the held-out essays play the test set, as Kaggle's hidden test does for a notebook that trains
    # (test-fitted tokenizers and vocabularies, pseudo-labels see them); false: they are only scored, as
    # essays sent to predict/serve are (every label-free fit is redone per split without them)
    transductive: bool = True
    # every held-out essay (AI and reference human) is also scored after this attack recipe, the way an
    # obfuscating student would send it: the "<protocol>_attacked" figures (null: off)
    attack: str | None = "configs/augment/attack_heldout.yaml"
    seed: int = 11  # the reference humans' draw and the inner folds
    output: str = "submissions/generalization.json"  # with .md and .png beside it

    def check(self) -> None:
        if not 0 < self.reference_humans < 1:
            raise Invalid(f"must lie in (0, 1), got {self.reference_humans}", "reference_humans")
        if self.inner_folds < 2:
            raise Invalid(f"must be >= 2, got {self.inner_folds}", "inner_folds")
        if self.loso is None and self.lopo is None and self.logo is None:
            raise Invalid("turn on at least one protocol (loso, lopo, logo)")
        groupable = [c for c in CANONICAL if c not in ("id", "text", "label")]
        if self.logo is not None and self.logo.column not in groupable:
            raise Invalid(f"must be one of {', '.join(groupable)}, got '{self.logo.column}'", "logo.column")

    def protocols(self) -> dict[str, ProtocolSpec]:
        specs = (("loso", self.loso), ("lopo", self.lopo), ("logo", self.logo))
        return {name: spec for name, spec in specs if spec is not None}

    def column(self, protocol: str) -> str:
        """The canonical column a protocol holds out by."""
        return self.logo.column if protocol == "logo" and self.logo is not None else PROTOCOL_COLUMNS[protocol]

    def groups_of(self, protocol: str, frame: pd.DataFrame) -> pd.Series:
        """Each row's held-out group under ``protocol`` ('' where the row has none)."""
        column = frame.get(self.column(protocol), pd.Series("", index=frame.index)).astype(str)
        if protocol == "logo" and self.logo is not None and self.logo.groups:
            column = column.map(lambda value: self.logo.groups.get(value, value))  # type: ignore[union-attr]
        return column


@dataclass(frozen=True)
class Split:
    protocol: str
    group: str
    train: np.ndarray  # mask over the project's train rows
    eval: np.ndarray  # the held-out group and the reference humans

    @property
    def key(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", self.group).strip("_")[:40] or "group"
        return f"{self.protocol}-{slug}-{hashlib.sha1(self.group.encode()).hexdigest()[:6]}"


def _domains(train: pd.DataFrame) -> pd.Series:
    return train["domain"].astype(str) if "domain" in train else pd.Series("", index=train.index)


def reference_humans(train: pd.DataFrame, share: float, seed: int) -> np.ndarray:
    """A fixed ``share`` of the human essays, drawn by whole duplicate clusters within each domain (adding a
    file of another domain leaves the first one's draw as it was)."""
    human = binary_labels(train["label"]) == 0
    clusters = train["dup_cluster"] if "dup_cluster" in train else train["id"]
    domains = _domains(train)
    chosen: list[object] = []
    for domain in pd.unique(domains):
        unique = np.unique(clusters[human & (domains == domain).to_numpy()].to_numpy())
        if len(unique):
            rng = np.random.default_rng(seed)
            chosen += list(rng.permutation(unique)[: max(1, round(share * len(unique)))])
    return human & clusters.isin(chosen).to_numpy()


def make_splits(train: pd.DataFrame, cfg: EvaluateConfig) -> list[Split]:
    """Every split of every protocol, deterministic for the data and config (workers recompute them)."""
    negatives = reference_humans(train, cfg.reference_humans, cfg.seed)
    clusters = (train["dup_cluster"] if "dup_cluster" in train else train["id"]).to_numpy()
    labels = binary_labels(train["label"])
    ai = labels == 1
    domains = _domains(train)
    splits = []
    for protocol, spec in cfg.protocols().items():
        column = cfg.groups_of(protocol, train)
        counts = column[ai].value_counts() if protocol == "loso" else column.value_counts()
        for group in sorted(g for g, n in counts.items() if g and n >= spec.min_essays):
            held = (column == group).to_numpy()
            # logo: the group's own humans are its negatives; else the reference humans of its AI texts' domains
            same_domain = domains.isin(domains[held & ai]).to_numpy()
            evaluated = held if protocol == "logo" else held | (negatives & same_domain)
            touched = np.isin(clusters, clusters[evaluated])  # near-duplicates of scored essays never train
            fit = ~touched
            both = len(np.unique(labels[evaluated])) == 2
            if len(np.unique(labels[fit])) < 2 or not ai[held].any() or not both:
                continue
            splits.append(Split(protocol, group, fit, evaluated))
    if not splits:
        raise DaigtError(
            "no generalization split: the training data needs a 'source' (or prompt) column with groups of at "
            "least min_essays essays (configs/evaluate.yaml)"
        )
    return splits


def _split_run_key(config_key: str, split: Split, train: pd.DataFrame, cfg: EvaluateConfig) -> str:
    return fingerprint(
        {
            "config": config_key,
            "split": split.key,
            "train": frame_fingerprint(train[split.train], ["id", "text", "label"]),
            "eval": frame_fingerprint(train[split.eval], ["id", "text", "label"]),
            "inner": {"folds": cfg.inner_folds, "seed": cfg.seed, "transductive": cfg.transductive},
            "attack": load_yaml(repo_path(cfg.attack)) if cfg.attack else None,
        }
    )


def run_model(
    project: Project, name: str, cfg: EvaluateConfig, progress: bool = True, part: tuple[int, int] = (0, 1)
) -> list[str]:
    """Fit and score one model in every split (skipping splits already done for this config and data); with
    ``part`` = (i, n), only every n-th split from the i-th, so n processes can share one model's splits."""
    # long: the split loop and the caches it shares across splits (attacked copies, one prepared model)
    spec = load_model_config(name)
    model_name, model_config = spec.name, spec.config
    trainer = FoldTrainer(project, spec, model_config.seed, progress=False)
    config_key = trainer.config_key()
    train, _ = project.train_frame()
    splits = make_splits(train, cfg)[part[0] :: part[1]]
    artifacts = ModelArtifacts(project.artifacts, model_name)
    todo = [s for s in splits if artifacts.split(s.key).run_key() != _split_run_key(config_key, s, train, cfg)]
    lines = []
    if len(todo) < len(splits):
        lines.append(f"[{model_name}] {len(splits) - len(todo)} of {len(splits)} splits up to date")
    if not todo:
        return lines
    hardening = trainer.hardening
    clean = hardening.clean(train)
    # every worker attacks the same essays: once per run, cached
    under_attack = hardening.clean(attacked(train, cfg.attack, project.cache_dir)) if cfg.attack else None
    stacker_recipe = trainer.stacker_attack  # as in fold training: the stacker also learns from attacked OOF rows
    for_stacker = hardening.clean(attacked(train, stacker_recipe, project.cache_dir)) if stacker_recipe else None
    copies = hardening.copies(clean, progress=False)
    model = spec.build()
    if cfg.transductive:  # every essay is a training or a test essay of every split: prepare once
        model.prepare(pd.concat([clean, copies], ignore_index=True))
    bar = console.bar(todo, enabled=progress, desc=f"{model_name} splits", unit="split")
    for split in bar:
        fit, held = clean[split.train].reset_index(drop=True), clean[split.eval].reset_index(drop=True)
        if not cfg.transductive:  # the held-out essays may be cached, never fitted on (not even label-free)
            own = pd.concat([fit, copies[copies["parent_id"].isin(fit["id"])]], ignore_index=True)
            model.prepare(pd.concat([own.assign(scored_only=False), held.assign(scored_only=True)]))
        unlabeled = held[["id", "text"]] if cfg.transductive else None
        inner = assign_folds(fit, FoldConfig(n_folds=cfg.inner_folds, seed=cfg.seed))["fold"].to_numpy()
        scored = {"eval": held}
        if under_attack is not None:
            scored[ATTACKED] = under_attack[split.eval].reset_index(drop=True)
        fit_attacked = None if for_stacker is None else for_stacker[split.train].reset_index(drop=True)
        oof, oof_attacked = np.zeros(len(fit)), np.zeros(len(fit))
        evaluated = {name: np.zeros((cfg.inner_folds, len(held))) for name in scored}
        for k in range(cfg.inner_folds):
            context = FitContext(
                unlabeled=unlabeled,
                progress=False,
                epoch_texts=hardening.epoch_texts(),
                held_out=fit[inner == k][["id", "text", "label"]],
            )
            extra = {} if fit_attacked is None else {TRAIN_ATTACKED: fit_attacked[inner == k]}
            result = fit_and_score(
                model,
                for_fold(copies, fit[inner != k]),
                context,
                {"oof": fit[inner == k], **scored, **extra},
                model_config.pseudo,
                model_config.weighting,
            )
            oof[inner == k] = result.scores["oof"]
            if extra:
                oof_attacked[inner == k] = result.scores[TRAIN_ATTACKED]
            for name in scored:
                evaluated[name][k] = result.scores[name]
        predictions = pd.concat(
            [
                pd.DataFrame({"id": fit["id"], "role": "train", "fold": inner, "pred": oof}),
                *(
                    [pd.DataFrame({"id": fit["id"], "role": TRAIN_ATTACKED, "fold": inner, "pred": oof_attacked})]
                    if fit_attacked is not None
                    else []
                ),
                *(
                    pd.DataFrame({"id": held["id"], "role": name, "fold": -1, "pred": preds.mean(axis=0)})
                    for name, preds in evaluated.items()
                ),
            ],
            ignore_index=True,
        )
        run_key = _split_run_key(config_key, split, train, cfg)
        artifacts.split(split.key).write(predictions, {"run_key": run_key, "config_key": config_key})
        score = auc(held["label"], evaluated["eval"].mean(axis=0))
        lines.append(f"[{model_name}] {PROTOCOL_TITLES[split.protocol]} '{split.group}': AUC {score:.4f}")
    return lines


def run_model_job(args: ProjectArgs, cfg: EvaluateConfig, job: tuple[str, int, int], progress: bool) -> list[str]:
    """One ``--jobs`` worker's share: part ``job[1]`` of ``job[2]`` of model ``job[0]``'s splits (a new process:
    the project is loaded again from its options, its data warnings already said by the parent)."""
    name, part, parts = job
    project = Project.load(*args)
    project.warn = False
    return run_model(project, name, cfg, progress=progress, part=(part, parts))


def evaluate(
    project: Project, names: list[str], blend: BlendConfig, cfg: EvaluateConfig, progress: bool = True
) -> dict[str, Any]:
    """Every candidate of blend scored in every split (models must have been run by ``run_model`` first)."""
    # long: one pass over the splits that fills every protocol's table from the same candidates
    train, _ = project.train_frame()
    splits = make_splits(train, cfg)
    model_keys: dict[str, str] = {}
    for name in names:
        spec = load_model_config(name)
        model_keys[spec.name] = FoldTrainer(project, spec, spec.config.seed, progress=False).config_key()
    rows: list[dict[str, Any]] = []
    # decisions, once all ran (and for a held-out source, the split's training rows: attribution's)
    later: list[tuple[int, Candidate, np.ndarray, pd.DataFrame, str, np.ndarray, pd.DataFrame | None]] = []
    style = StyleMemo(blend.features.meta, blend.features.stylometry, project.cache_dir)  # once per essay, kept
    under_attack = attacked(train, cfg.attack, project.cache_dir) if cfg.attack else None
    stacker_recipe = project.config.stacker_attack
    for_stacker = attacked(train, stacker_recipe, project.cache_dir) if stacker_recipe else None
    roles = ["eval", ATTACKED] if cfg.attack else ["eval"]
    counts, terms = count_texts(train["text"], blend.shift)  # once: each split's shift score selects its rows
    bar = console.bar(splits, enabled=progress, desc="stacker per split", unit="split")
    for split in bar:
        fit, held = train[split.train].reset_index(drop=True), train[split.eval].reset_index(drop=True)
        models: dict[str, ModelPredictions] = {}
        inner = None
        for model_name, config_key in model_keys.items():
            folder = ModelArtifacts(project.artifacts, model_name).split(split.key)
            if folder.run_key() != _split_run_key(config_key, split, train, cfg):
                raise DaigtError(f"{folder.path}: missing or stale; run python src/evaluate.py (it fits what is due)")
            preds = folder.predictions()
            part = preds[preds["role"] == "train"].set_index("id").loc[fit["id"]]
            inner = part["fold"].to_numpy()
            scored = {r: preds[preds["role"] == r].set_index("id").loc[held["id"], "pred"].to_numpy() for r in roles}
            hit = preds[preds["role"] == TRAIN_ATTACKED].set_index("id")
            oof_attacked = hit.loc[fit["id"], "pred"].to_numpy() if len(hit) else None
            models[model_name] = ModelPredictions(model_name, part["pred"].to_numpy(), scored, oof_attacked)
        frames = {"eval": held}
        if under_attack is not None:
            frames[ATTACKED] = under_attack[split.eval].reset_index(drop=True)
        fit_attacked = None if for_stacker is None else for_stacker[split.train]["text"].reset_index(drop=True)
        candidates = build_candidates(
            models, fit.assign(fold=inner), frames, blend.features, blend.stacker, style, fit_attacked
        )
        labels = binary_labels(held["label"])
        in_group = (cfg.groups_of(split.protocol, held) == split.group).to_numpy()
        shipped = candidates[shipped_candidate(blend, list(candidates))]
        counted = (counts[split.train], terms)
        shift = ShiftScorer.fit(fit["text"], fit["label"].to_numpy(dtype=float), inner, blend.shift, counted)
        in_domain = {role: shift.in_domain(frame["text"]) for role, frame in frames.items()}
        humans, fit_labels = labels == 0, fit["label"].to_numpy(dtype=float)
        for role in roles:
            attributing = role == "eval" and split.protocol == "loso" and blend.attribution.enabled
            fit_rows = fit.assign(fold=inner) if attributing else None
            later.append((len(rows), shipped, fit_labels, frames[role], role, in_domain[role], fit_rows))
            rows.append(
                {
                    "protocol": split.protocol if role == "eval" else f"{split.protocol}_{ATTACKED}",
                    "group": split.group,
                    "n_ai": int(labels[in_group].sum()),
                    "n_human": int((labels == 0).sum()),
                    "n_train": len(fit),
                    "auc": {n: auc(labels, c.scored[role]) for n, c in candidates.items()},
                    # AI caught at the cut that flags 1 % (0.1 %) of the held-out humans: the ideal cut's reach
                    "tpr_at_fpr": {n: tpr_points(labels, c.scored[role]) for n, c in candidates.items()},
                }
            )
            if role == "eval" and split.protocol == HELD_OUT_HUMANS:  # what a held-out cut is set from
                rows[-1]["human_scores"] = {n: np.round(c.scored[role][humans], 6).tolist()
                                            for n, c in candidates.items()}  # fmt: skip
    # decisions at the cut the shipped ensemble would use, with and without the shift score. With cut_from:
    # held_out, a held-out group's cut is set also on the humans of the *other* held-out groups, so its figures
    # are for a group its cut never saw; sources and prompts keep the OOF cut (their reference humans are among
    # those groups' texts)
    for index, shipped, fit_labels, held, role, in_domain_, fit_rows in later:
        row = rows[index]
        others = [r["human_scores"][shipped.name] for r in rows if "human_scores" in r and r["group"] != row["group"]]
        own_humans = row["protocol"].removesuffix(f"_{ATTACKED}") == HELD_OUT_HUMANS
        held_out = np.concatenate(others) if others and own_humans and blend.decisions.cut_from == "held_out" else None
        thresholds = split_thresholds(shipped, fit_labels, blend, held_out)
        row["decisions"] = split_decisions(shipped, thresholds, held, role, in_domain_)
        # the same cut without the shift score: what the decisions were before it
        row["decisions_without_shift"] = split_decisions(shipped, thresholds, held, role, None)
        if fit_rows is not None:  # leave-one-generator-out: what the held-out source is attributed to
            decisions, _ = decide_with_reasons(shipped.scored[role], thresholds, held["text"], in_domain_)
            row["attribution"] = split_attribution(fit_rows, held, decisions, row["group"], blend.attribution)
    return {
        "splits": rows,
        "summary": summarise(rows),
        "models": model_keys,
        "data": frame_fingerprint(train, ["id", "text", "label"]),
        "blend": blend.stacking_key(),
        "decided_by": shipped_candidate(blend, [*model_keys, RANK_MEAN, STACKER]),
        "config": to_dict(cfg),
        "n_reference_humans": int(reference_humans(train, cfg.reference_humans, cfg.seed).sum()),
    }


def shipped_candidate(blend: BlendConfig, names: list[str]) -> str:
    """The candidate whose decisions a split reports: blend's ``pick`` when it names one; under ``auto``, the
    fallback (what auto ships without held-out results; with them it picks on these very figures)."""
    if blend.pick != "auto":
        return blend.pick
    return blend.pick_fallback if blend.pick_fallback in names else RANK_MEAN


def split_thresholds(
    candidate: Candidate, fit_labels: np.ndarray, blend: BlendConfig, held_out_humans: np.ndarray | None = None
) -> Thresholds:
    """A split's cuts, as blend sets them on train: from the candidate's inner OOF and, given
    ``held_out_humans``, raised to the conformal cuts on the other groups' held-out humans."""
    thresholds = choose_thresholds(fit_labels, candidate.oof, blend.decisions)
    if held_out_humans is not None and len(held_out_humans):
        thresholds = held_out_thresholds(thresholds, held_out_humans, blend.decisions)
    return thresholds


def split_decisions(
    candidate: Candidate, thresholds: Thresholds, held: pd.DataFrame, role: str, in_domain: np.ndarray | None
) -> dict[str, Any]:
    """Humans and AI texts decided ``ai``, and abstentions, on a split's held-out rows (``in_domain`` from the
    shift score fitted on the split's training rows; None: every text in domain)."""
    decisions, reasons = decide_with_reasons(candidate.scored[role], thresholds, held["text"], in_domain)
    return decision_row(decisions, reasons, held["label"].to_numpy(dtype=float))


def split_attribution(
    fit: pd.DataFrame, held: pd.DataFrame, decisions: np.ndarray, source: str, cfg: AttributionConfig
) -> dict[str, Any] | None:
    """A held-out source's AI texts attributed by the second task trained on the split's training rows (their
    inner folds): among its texts decided ``ai`` (what users see) and among all of them. None when the source
    names no generator or training has fewer than two families."""
    family = cfg.vocabulary.family(source)
    fitted = fit_attributor(fit, cfg) if family else None
    if fitted is None:
        return None
    attributor = fitted[0]
    own = ((held["source"] == source) & (binary_labels(held["label"]) == 1)).to_numpy()
    probs, similarity = attributor.probabilities(held["text"][own])
    generator, _ = attributor.decide(probs, similarity, np.full(int(own.sum()), AI, dtype=object))
    decided = np.asarray(decisions)[own] == AI
    return {
        **held_out_generator(generator[decided], family, attributor.classes),
        "all_ai": held_out_generator(generator, family, attributor.classes),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per protocol and candidate: mean and minimum AUC over the held-out groups."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        table = pd.DataFrame([r["auc"] for r in rows if r["protocol"] == protocol])
        out[protocol] = {c: {"mean": float(table[c].mean()), "min": float(table[c].min())} for c in table.columns}
    return out

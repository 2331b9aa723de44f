"""Honest generalization figures: the locked holdout, leave-one-group-out splits, pseudo-labels, the BPE option.

Each test asserts the property that makes the number honest (nothing held out reaches training), on synthetic
data, through the code the pipeline runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_essays
from helpers import blend_args, train_args
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

import blend
import evaluate
import train_fold
from daigt.config import PseudoSpec
from daigt.data import binary_labels
from daigt.families import FitContext, get_family
from daigt.families.tfidf import TfidfFamily
from daigt.fold_trainer import PSEUDO_ID, fit_and_score
from daigt.folds import HoldoutConfig, draw_holdout, load_or_create_holdout
from daigt.generalization import EvaluateConfig, GroupProtocolSpec, ProtocolSpec, make_splits, reference_humans
from daigt.schema import Invalid
from daigt.text.bpe import TokenizerSpec, train_bpe


def sourced_essays(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Essays from three AI sources and two human ones, on three prompts, with planted near-duplicates that
    cross sources (the case a careless split would leak)."""
    frame = make_essays(n, seed=seed)
    rng = np.random.default_rng(seed)
    ai = frame["generated"] == 1
    frame.loc[ai, "source"] = rng.choice(["gpt", "llama", "mistral"], ai.sum())
    frame.loc[~ai, "source"] = rng.choice(["persuade", "students"], (~ai).sum())
    frame["prompt_name"] = rng.choice(["cars", "vote", "mars"], n)
    copies = frame.sample(12, random_state=seed).assign(
        id=lambda f: f["id"] + "_copy", text=lambda f: f["text"] + " yes", source="students", generated=0
    )
    return pd.concat([frame, copies], ignore_index=True)


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    from daigt.dedup import DedupConfig, deduplicate

    out = frame.rename(columns={"generated": "label", "prompt_name": "group"}).assign(
        label=lambda f: f["label"].astype(float)
    )
    return deduplicate(out, DedupConfig())[0]


def test_splits_never_train_on_a_held_out_group_a_reference_human_or_a_near_duplicate() -> None:
    train = canonical(sourced_essays())
    cfg = EvaluateConfig(loso=ProtocolSpec(min_essays=10), lopo=ProtocolSpec(min_essays=10), reference_humans=0.3)
    splits = make_splits(train, cfg)
    assert {(s.protocol, s.group) for s in splits} == {
        *(("loso", s) for s in ("gpt", "llama", "mistral")),
        *(("lopo", p) for p in ("cars", "vote", "mars")),
    }
    reference = np.logical_and.reduce([s.eval for s in splits])  # held out of every split
    assert reference.sum() > 0 and (train["label"][reference] == 0).all()
    for split in splits:
        column = train["source" if split.protocol == "loso" else "group"]
        held = (column == split.group).to_numpy()
        assert not (split.train & split.eval).any()
        assert split.eval[held].all() and not split.train[held].any()
        assert not split.train[reference].any()
        evaluated_clusters = set(train["dup_cluster"][split.eval])
        assert not set(train["dup_cluster"][split.train]) & evaluated_clusters  # near-duplicates included
    copies = train["id"].str.endswith("_copy").to_numpy()
    assert copies.any()  # the planted cross-source duplicates exist, and the check above covered them


def two_domains(seed: int = 0) -> pd.DataFrame:
    """Essays (sourced_essays) and a second domain, 'news', with its own words (each essay word spelled backwards),
    humans and generators."""
    essays = sourced_essays(seed=seed).assign(domain="essays")
    news = make_essays(160, seed=seed + 1).assign(
        id=lambda f: "n" + f["id"],
        domain="news",
        prompt_name="",
        text=lambda f: f["text"].map(lambda t: " ".join(w[::-1] for w in t.split())),
    )
    rng = np.random.default_rng(seed)
    news.loc[news["generated"] == 1, "source"] = rng.choice(["gpt", "palm"], int((news["generated"] == 1).sum()))
    news.loc[news["generated"] == 0, "source"] = "reporters"
    return pd.concat([essays, news], ignore_index=True)


def test_leave_one_domain_out_never_trains_on_its_domain_and_sources_meet_their_own_domains_humans() -> None:
    train = canonical(two_domains())
    cfg = EvaluateConfig(loso=ProtocolSpec(min_essays=10), lopo=None, logo=GroupProtocolSpec(min_essays=50))
    splits = make_splits(train, cfg)
    by_domain = {s.group: s for s in splits if s.protocol == "logo"}
    assert set(by_domain) == {"essays", "news"}
    for domain, split in by_domain.items():
        held = (train["domain"] == domain).to_numpy()
        assert (split.eval == held).all()  # scored on its own humans and AI, nothing else
        assert not split.train[held].any() and split.train[~held].any()
        assert not set(train["dup_cluster"][split.train]) & set(train["dup_cluster"][split.eval])
        assert set(binary_labels(train["label"][split.eval])) == {0, 1}
    reference = reference_humans(train, cfg.reference_humans, cfg.seed)
    assert set(train["domain"][reference]) == {"essays", "news"}  # drawn within each domain
    for split in (s for s in splits if s.protocol == "loso"):
        held = (train["source"] == split.group).to_numpy()
        domains = set(train["domain"][held])
        negatives = split.eval & ~held
        assert negatives.any() and set(train["domain"][negatives]) <= domains  # gpt: both; llama: essays only
        assert (split.eval & reference).sum() == (reference & train["domain"].isin(domains).to_numpy()).sum()


def test_adding_a_domain_leaves_the_first_domains_holdout_and_reference_humans_as_they_were() -> None:
    both = canonical(two_domains())
    alone = canonical(two_domains()[lambda f: f["domain"] == "essays"].reset_index(drop=True))
    cfg = HoldoutConfig(fraction=0.2)
    essays_held = set(draw_holdout(both, cfg)) & set(alone["id"])
    assert essays_held == set(draw_holdout(alone, cfg)) and essays_held
    assert set(draw_holdout(both, cfg)) - essays_held  # news gets its own share
    in_both = set(both["id"][reference_humans(both, 0.3, 11)]) & set(alone["id"])
    assert in_both == set(alone["id"][reference_humans(alone, 0.3, 11)])


def test_a_group_column_that_is_not_canonical_is_refused() -> None:
    with pytest.raises(Invalid, match="writer"):
        EvaluateConfig(logo=GroupProtocolSpec(column="writer")).check()


def test_evaluate_holds_each_domain_out_and_reports_decisions_per_split(workspace: dict[str, Path], capsys) -> None:
    frame = two_domains()
    essays, news = workspace["root"] / "essays.csv", workspace["root"] / "news.csv"
    frame[frame["domain"] == "essays"].drop(columns="domain").to_csv(essays, index=False)
    frame[frame["domain"] == "news"].drop(columns="domain").to_csv(news, index=False)  # domain = the file's name
    cfg = workspace["root"] / "evaluate.yaml"
    cfg.write_text(yaml.safe_dump({"loso": None, "lopo": None, "logo": {"min_essays": 50}, "inner_folds": 2,
                                   "attack": None}))  # fmt: skip
    out = workspace["root"] / "gen.json"
    evaluate.main(["--config", str(workspace["project"]), "--artifacts", str(workspace["artifacts"]), "--train",
                   str(essays), str(news), "--eval-config", str(cfg), "--models", str(workspace["model"]),
                   "--out", str(out), "--no-progress"])  # fmt: skip
    result = json.loads(out.read_text())
    rows = {r["group"]: r for r in result["splits"]}
    assert set(rows) == {"essays", "news"} and result["decided_by"] == "rank_mean"
    for domain, row in rows.items():
        assert row["n_ai"] == (frame[frame["domain"] == domain]["generated"] == 1).sum()
        decided = row["decisions"]
        assert decided["n_human"] == row["n_human"] and decided["n"] == row["n_ai"] + row["n_human"]
        assert 0 <= decided["humans_decided_ai"] <= decided["ai_decided_ai"] <= 1
        # the other domain never trained this split, so the shift score calls much of it out of domain
        assert decided["reasons"]["out_of_domain"] > 0
        before = row["decisions_without_shift"]  # the same cut, every text taken as in domain
        assert before["reasons"]["out_of_domain"] == 0
        assert decided["humans_decided_ai"] <= before["humans_decided_ai"]  # abstaining only ever removes an ai
        assert decided["ai_decided_ai"] <= before["ai_decided_ai"]
    markdown = out.with_suffix(".md").read_text()
    assert "### leave-one-group-out" in markdown and "humans → ai" in markdown and "| news |" in markdown
    assert "leave-one-group-out decisions (rank_mean): humans decided ai at most" in capsys.readouterr().out


def test_evaluate_runs_the_whole_pipeline_per_split_and_fits_never_see_held_out_rows(
    workspace: dict[str, Path], monkeypatch, capsys
) -> None:
    sourced_essays().to_csv(workspace["train"], index=False)
    cfg = workspace["root"] / "evaluate.yaml"
    cfg.write_text(yaml.safe_dump({"loso": {"min_essays": 10}, "lopo": None, "inner_folds": 2}))
    seen: list[set[str]] = []
    original_fit = TfidfFamily.fit

    def spy(self, train, context):
        seen.append(set(train["id"]))
        return original_fit(self, train, context)

    monkeypatch.setattr(TfidfFamily, "fit", spy)
    out = workspace["root"] / "gen.json"
    args = ["--config", str(workspace["project"]), "--artifacts", str(workspace["artifacts"]), "--eval-config"]
    evaluate.main([*args, str(cfg), "--models", str(workspace["model"]), "--out", str(out), "--no-progress"])
    result = json.loads(out.read_text())
    rows = [r for r in result["splits"] if r["protocol"] == "loso"]
    assert {r["group"] for r in rows} == {"gpt", "llama", "mistral"} and len(seen) == 3 * 2  # 3 splits x 2 folds
    attacked = [r for r in result["splits"] if r["protocol"] == "loso_attacked"]
    assert [r["group"] for r in attacked] == [r["group"] for r in rows]  # the same essays, scored under attack
    split_dir = next((workspace["artifacts"] / "tiny_tfidf" / "generalization").iterdir())
    preds = pd.read_csv(split_dir / "predictions.csv", dtype={"id": str})
    clean, hit = (preds[preds["role"] == r].set_index("id")["pred"] for r in ("eval", "attacked"))
    assert clean.index.equals(hit.index) and not np.allclose(clean, hit)  # attacked texts were really scored
    train = pd.read_csv(workspace["train"], dtype={"id": str})
    for row, fitted in zip(rows, (seen[i] | seen[i + 1] for i in range(0, 6, 2)), strict=True):
        held = set(train["id"][train["source"] == row["group"]])
        assert not fitted & held
        assert set(row["auc"]) == {"tiny_tfidf", "rank_mean", "stacker"}
        assert all(0 <= v <= 1 for v in row["auc"].values())
    assert set(result["summary"]["loso"]["stacker"]) == {"mean", "min"}
    assert (out.with_suffix(".png")).read_bytes()[:4] == b"\x89PNG" and "| gpt |" in out.with_suffix(".md").read_text()
    seen.clear()
    evaluate.main([*args, str(cfg), "--models", str(workspace["model"]), "--out", str(out), "--no-progress"])
    assert not seen and "3 of 3 splits up to date" in capsys.readouterr().out  # cached by run key


def test_the_locked_holdout_is_persisted_grouped_and_never_trained_on(workspace: dict[str, Path]) -> None:
    essays = sourced_essays()
    essays.to_csv(workspace["train"], index=False)
    config = yaml.safe_load(workspace["project"].read_text())
    config["holdout"]["fraction"] = 0.2
    workspace["project"].write_text(yaml.safe_dump(config))
    train_fold.main(train_args(workspace))
    holdout = pd.read_csv(workspace["root"] / "folds" / "holdout.csv", dtype={"id": str})["id"]
    assert 0.12 < len(holdout) / len(essays) < 0.3
    oof = pd.concat(pd.read_csv(p, dtype={"id": str}) for p in workspace["artifacts"].glob("tiny_tfidf/fold*/oof.csv"))
    assert not set(oof["id"]) & set(holdout) and len(oof) + len(holdout) == len(essays)
    scored = pd.read_csv(workspace["artifacts"] / "tiny_tfidf" / "fold0" / "holdout.csv", dtype={"id": str})
    assert list(scored["id"]) == list(holdout)
    out = workspace["root"] / "submission.csv"
    blend.main(blend_args(workspace, out))
    report = json.loads((workspace["root"] / "report.json").read_text())
    assert report["n_holdout"] == len(holdout)
    assert all(0.5 < c["holdout_auc"] <= 1 for c in report["candidates"].values())
    from daigt.dedup import DedupConfig, deduplicate

    frame = deduplicate(canonical(essays), DedupConfig())[0]
    again = load_or_create_holdout(frame, HoldoutConfig(fraction=0.2), workspace["root"] / "folds" / "holdout.csv", "")
    assert set(frame["id"][again]) == set(holdout)  # read back, not redrawn
    clusters = frame.set_index("id")["dup_cluster"]
    assert not set(clusters[list(holdout)]) & set(clusters.drop(list(holdout)))  # duplicates stay together


def test_pseudo_labels_come_from_the_test_essays() -> None:
    essays = make_essays(160, seed=3).rename(columns={"generated": "label"}).assign(group="", source="")
    essays["label"] = essays["label"].astype(float)
    test = make_essays(60, seed=8)[["id", "text"]].assign(id=lambda f: "t" + f["id"])
    fit_rows, held = essays.iloc[:120], essays.iloc[120:]
    pseudo = PseudoSpec(rounds=2, share=0.2, min_test=10)
    params = {"vectorizer": {"analyzer": "word"}, "classifiers": {"multinomial_nb": {}}}
    fitted: list[pd.DataFrame] = []

    def run(held_out: pd.DataFrame) -> np.ndarray:
        model = get_family("tfidf")(params, seed=1)
        original = model.fit
        model.fit = lambda rows, ctx: (fitted.append(rows), original(rows, ctx))[1]
        return fit_and_score(model, fit_rows, FitContext(unlabeled=test), {"oof": held_out}, pseudo).scores["oof"]

    run(held)
    pseudo_rows = fitted[-1][fitted[-1]["id"].str.startswith(PSEUDO_ID)]
    assert len(fitted) == 3 and len(pseudo_rows) == 2 * 12  # fit, then two refits with 20% at each end
    assert set(pseudo_rows["id"].str.removeprefix(PSEUDO_ID)) <= set(test["id"])
    assert set(pseudo_rows["label"]) == {0.0, 1.0}
    none = fit_and_score(get_family("tfidf")(params, 1), fit_rows, FitContext(unlabeled=test.head(5)), {}, pseudo)
    assert none.n_pseudo == 0  # a test file below min_test: no pseudo-labels


def test_pseudo_labelling_never_feeds_an_oof_row_its_own_label(workspace: dict[str, Path]) -> None:
    """Through the fold trainer: with pseudo-labelling on, flipping every label of fold 0 leaves fold 0's OOF
    predictions unchanged (each fold's pseudo labels come from its own model, which never saw the fold) while
    the other folds, which train on those rows, change."""
    make_essays(60, seed=2)[["id", "prompt_name", "text"]].assign(id=lambda f: "t" + f["id"]).to_csv(
        workspace["test"], index=False
    )
    with workspace["model"].open("a") as handle:
        handle.write("pseudo: {rounds: 2, share: 0.2, min_test: 20}\n")

    def oof(artifacts: Path, fold: int) -> pd.Series:
        return pd.read_csv(artifacts / "tiny_tfidf" / f"fold{fold}" / "oof.csv", dtype={"id": str})["pred"]

    first = workspace["root"] / "first"
    train_fold.main(train_args(workspace, "--artifacts", str(first)))
    assert json.loads((first / "tiny_tfidf" / "fold0" / "metrics.json").read_text())["n_pseudo"] == 24
    folds = pd.read_csv(workspace["folds"], dtype={"id": str})
    train = pd.read_csv(workspace["train"], dtype={"id": str})
    in_fold0 = train["id"].isin(folds["id"][folds["fold"] == 0])
    train.loc[in_fold0, "generated"] = 1 - train.loc[in_fold0, "generated"]
    train.to_csv(workspace["train"], index=False)
    second = workspace["root"] / "second"
    train_fold.main(train_args(workspace, "--artifacts", str(second)))
    pd.testing.assert_series_equal(oof(first, 0), oof(second, 0))
    assert not np.allclose(oof(first, 1), oof(second, 1))


def test_bpe_option_equals_tokenizers_plus_sklearn(tmp_path: Path) -> None:
    essays = make_essays(80, seed=5).rename(columns={"generated": "label"})
    essays["label"] = essays["label"].astype(float)
    train, test = essays.iloc[:60], essays.iloc[60:][["id", "text"]]
    spec = {"kind": "bpe", "fit_on": "test", "vocab_size": 300, "min_frequency": 1}
    params = {
        "tokenizer": spec,
        "fit_vocabulary_on": "test",
        "vectorizer": {"ngram_range": [1, 3], "sublinear_tf": True},
        "classifiers": {"lr": {"kind": "logistic_regression", "params": {"C": 10.0}}},
    }
    family = get_family("tfidf")(params, seed=0)
    family.prepare(pd.concat([train, test]))
    family.fit(train, FitContext(unlabeled=test))

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    direct = Tokenizer(models.BPE(unk_token="[UNK]"))
    direct.normalizer = normalizers.Sequence([normalizers.NFC()])
    direct.pre_tokenizer = pre_tokenizers.ByteLevel()
    direct.train_from_iterator(
        test["text"].tolist(), trainers.BpeTrainer(vocab_size=300, min_frequency=1, special_tokens=["[UNK]"])
    )
    tokens = {t: direct.encode(t).tokens for t in essays["text"]}
    assert all(family.bpe.encode(t).tokens == tokens[t] for t in essays["text"])
    vectorizer = TfidfVectorizer(
        analyzer=lambda toks: [" ".join(toks[i : i + n]) for n in (1, 2, 3) for i in range(len(toks) - n + 1)],
        sublinear_tf=True,
    )
    vectorizer.fit([tokens[t] for t in test["text"]])
    expected = vectorizer.transform([tokens[t] for t in train["text"]])
    got = family.features.transform(family.texts(train))
    assert family.features.term_strings() == list(vectorizer.get_feature_names_out())
    np.testing.assert_allclose(got.toarray(), expected.toarray(), atol=1e-12)
    reference = LogisticRegression(C=10.0, random_state=0).fit(expected, train["label"].astype(int))
    np.testing.assert_allclose(family.predict(test), reference.predict_proba(vectorizer.transform(
        [tokens[t] for t in test["text"]]))[:, 1], atol=1e-9)  # fmt: skip
    assert train_bpe(test["text"], TokenizerSpec(vocab_size=300, min_frequency=1)).get_vocab() == direct.get_vocab()


def test_tokenizer_and_fixed_analyzer_settings_conflict(tmp_path: Path) -> None:
    from daigt.errors import DaigtError
    from daigt.model_configs import load_model_config

    path = tmp_path / "m.yaml"
    path.write_text("family: tfidf\nparams: {tokenizer: {}, vectorizer: {analyzer: char}, classifiers: {sgd: {}}}\n")
    with pytest.raises(DaigtError, match=r"params\.vectorizer: with a tokenizer the vectorizer reads its tokens"):
        load_model_config(str(path))


def test_blend_picks_by_held_out_sources_only_with_matching_results(workspace: dict[str, Path], capsys) -> None:
    sourced_essays().to_csv(workspace["train"], index=False)
    lm = workspace["root"] / "tiny_lm.yaml"
    lm.write_text(yaml.safe_dump({"family": "ngram_lm", "seed": 1, "params": {"order": 2}}))
    config = yaml.safe_load(workspace["project"].read_text())
    config["models"] = [str(workspace["model"]), str(lm)]
    workspace["project"].write_text(yaml.safe_dump(config))
    common = ["--config", str(workspace["project"]), "--artifacts", str(workspace["artifacts"])]
    other_test = workspace["root"] / "elsewhere" / "test.csv"  # models trained with --test; evaluate reads none
    other_test.parent.mkdir()
    other_test.write_bytes(workspace["test"].read_bytes())
    train_fold.main(["--fold", "all", "--model", "all", *common, "--test", str(other_test), "--no-progress"])
    gen = workspace["root"] / "generalization.json"
    eval_cfg = workspace["root"] / "evaluate.yaml"
    eval_cfg.write_text(yaml.safe_dump({"loso": {"min_essays": 10}, "lopo": None, "inner_folds": 2}))
    evaluate.main([*common, "--eval-config", str(eval_cfg), "--out", str(gen), "--no-progress"])
    blend_cfg = yaml.safe_load((Path(blend.__file__).parents[1] / "configs" / "blend.yaml").read_text())
    blend_cfg.update(pick="auto", generalization=str(gen), min_oof_auc=0.0)
    blend_yaml = workspace["root"] / "blend.yaml"
    blend_yaml.write_text(yaml.safe_dump(blend_cfg))
    out = workspace["root"] / "sub" / "submission.csv"
    blend.main([*blend_args(workspace, out), "--blend-config", str(blend_yaml), "--test", str(other_test)])
    report = json.loads((out.parent / "report.json").read_text())
    summary = json.loads(gen.read_text())["summary"]
    assert report["picked_by"] == "generalization"

    def held_out(name: str) -> tuple[float, float]:
        return tuple(float(np.mean([summary[p][name][stat] for p in summary])) for stat in ("mean", "min"))

    assert set(summary) == {"loso", "loso_attacked"} and report["picked"] == max(summary["loso"], key=held_out)
    assert "### leave-one-source-out" in (out.parent / "report.md").read_text()
    capsys.readouterr()
    blend_cfg["stacker"]["n_estimators"] = 50  # the figures no longer describe this stacker
    blend_yaml.write_text(yaml.safe_dump(blend_cfg))
    blend.main([*blend_args(workspace, out), "--blend-config", str(blend_yaml), "--test", str(other_test)])
    assert "pick: auto falls back to pick_fallback (rank_mean)" in capsys.readouterr().err
    report = json.loads((out.parent / "report.json").read_text())
    assert report["picked_by"] == "fallback" and report["picked"] == "rank_mean" and report["generalization"] is None
    blend_cfg["pick_fallback"] = "best_oof"  # the old behaviour, by name
    blend_yaml.write_text(yaml.safe_dump(blend_cfg))
    blend.main([*blend_args(workspace, out), "--blend-config", str(blend_yaml), "--test", str(other_test)])
    report = json.loads((out.parent / "report.json").read_text())
    best = max(c["oof_auc"] for c in report["candidates"].values())
    assert report["picked_by"] == "oof" and report["candidates"][report["picked"]]["oof_auc"] == best

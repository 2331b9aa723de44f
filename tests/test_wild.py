"""Writing in the wild: profiles, sibling-grouped folds, held-out (conformal) cuts, TPR at a fixed FPR, the
style view of the shift score and genres held out whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from daigt import config as config_module
from daigt.blending import BlendConfig
from daigt.config import BLEND_CONFIG, PROFILE_ENV, load_config, use_profile
from daigt.decisions import DecisionConfig, Thresholds, choose_thresholds, conformal_cut, held_out_thresholds
from daigt.dedup import SiblingConfig, link_siblings
from daigt.errors import DaigtError
from daigt.generalization import EvaluateConfig, GroupProtocolSpec
from daigt.metrics import tpr_at_fpr, tpr_points
from daigt.project import ProjectConfig
from daigt.schema import ConfigError, parse
from daigt.shift import ShiftConfig, ShiftScorer


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profiles folder of the test's own, with one good profile."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "wide.yaml").write_text(
        yaml.safe_dump({"project": {"models": ["tfidf_word"]}, "blend": {"decisions": {"target_fpr": 0.002}}})
    )
    monkeypatch.setattr(config_module, "PROFILE_DIR", folder)
    return folder


def test_a_profile_overlays_each_config_it_names_and_leaves_the_rest(profiles: Path) -> None:
    base = load_config(BlendConfig, BLEND_CONFIG)
    use_profile("wide")
    blend = load_config(BlendConfig, BLEND_CONFIG)
    assert blend.decisions.target_fpr == 0.002 != base.decisions.target_fpr
    assert blend.stacker == base.stacker  # keys the profile does not set keep the base config's values
    assert load_config(ProjectConfig, config_module.PROJECT_CONFIG).models == ["tfidf_word"]
    use_profile(None)
    assert load_config(BlendConfig, BLEND_CONFIG).decisions.target_fpr == base.decisions.target_fpr


def test_the_active_profile_reaches_worker_processes_through_the_environment(profiles: Path) -> None:
    use_profile("wide")
    import os

    assert os.environ[PROFILE_ENV] == "wide"  # a --jobs worker (spawned or forked) inherits it


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"blnd": {}}, "blnd: unknown key — did you mean 'blend'?"),
        ({"blend": [1, 2]}, "blend: expected a mapping"),
    ],
)
def test_a_malformed_profile_is_one_line_before_any_work(profiles: Path, content: dict, message: str) -> None:
    (profiles / "bad.yaml").write_text(yaml.safe_dump(content))
    with pytest.raises(DaigtError, match=message):
        use_profile("bad")


def test_an_unknown_profile_names_the_ones_there_are(profiles: Path) -> None:
    with pytest.raises(DaigtError, match=r"--profile wid: no such profile \(have: wide\)"):
        use_profile("wid")


def test_a_bad_key_inside_a_profile_names_the_profile(profiles: Path) -> None:
    (profiles / "typo.yaml").write_text(yaml.safe_dump({"blend": {"decisions": {"target_fp": 0.1}}}))
    use_profile("typo")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*decisions\.target_fp: unknown key"):
        load_config(BlendConfig, BLEND_CONFIG)


def test_the_shipped_detector_profile_parses_against_every_config_it_changes() -> None:
    use_profile("detector")
    evaluate = load_config(EvaluateConfig, config_module.EVALUATE_CONFIG)
    project = load_config(ProjectConfig, config_module.PROJECT_CONFIG)
    blend = load_config(BlendConfig, BLEND_CONFIG)
    assert evaluate.logo is not None and len(set(evaluate.logo.groups.values())) >= 8
    assert project.folds.siblings is not None and project.artifacts != "artifacts"
    assert blend.decisions.cut_from == "held_out" and blend.shift.view == "function_words"


def test_siblings_join_a_rewrite_with_its_original_within_a_domain_only() -> None:
    original = "the volcano erupted near the village and farmers lost their crops and cattle in the ash"
    rewrite = "near the village the volcano erupted; farmers lost cattle and crops to the falling ash"
    other = "my favourite pizza place downtown serves thin crust with fresh basil and good coffee"
    frame = pd.DataFrame(
        {
            "id": list("abcde"),
            "text": [original, rewrite, other, rewrite, "a review of pasta with basil and thin crust"],
            "label": [0, 1, 0, 1, 1],
            "domain": ["news", "news", "news", "blogs", "news"],
            "dup_cluster": [0, 1, 2, 3, 4],
        }
    )
    groups = link_siblings(frame, SiblingConfig(min_similarity=0.5))
    assert groups[0] == groups[1]  # the rewrite goes with its original
    assert groups[3] != groups[0]  # the same words in another domain are not a sibling (no human there)
    assert len({groups[0], groups[2], groups[4]}) == 3  # unrelated texts stay apart
    assert len(set(link_siblings(frame, SiblingConfig(min_similarity=1.0)))) == 5


def test_siblings_refuse_a_similarity_outside_zero_to_one() -> None:
    with pytest.raises(ConfigError, match="min_similarity: must lie in"):
        parse(SiblingConfig, {"min_similarity": 0}, "project.yaml", "folds.siblings")


def test_tpr_at_fpr_reads_the_cut_off_these_humans() -> None:
    labels = np.r_[np.zeros(100), np.ones(4)]
    scores = np.r_[np.arange(100) / 100, [0.995, 0.985, 0.5, 0.1]]
    assert tpr_at_fpr(labels, scores, 0.01) == 0.5  # the cut 0.99 flags one human of 100 and two of four AI
    assert tpr_at_fpr(labels, scores, 0.0) == 0.25  # only above every human
    assert np.isnan(tpr_at_fpr(np.ones(3), np.ones(3), 0.01))
    assert set(tpr_points(labels, scores)) == {"0.01", "0.001"}


def test_the_conformal_cut_keeps_its_promise_at_the_stated_confidence() -> None:
    rng = np.random.default_rng(0)
    exceeded = [1 - conformal_cut(rng.random(1500), 0.01, 0.9) > 0.01 for _ in range(300)]
    assert np.mean(exceeded) <= 0.1 + 0.03  # uniform scores: the true FPR of cut c is 1 - c
    # the plain 1 % quantile of the same humans breaks it about half of the time
    plain = [1 - np.quantile(rng.random(1500), 0.99) > 0.01 for _ in range(300)]
    assert np.mean(plain) > 0.3


def test_the_conformal_cut_flags_no_human_when_there_are_too_few_to_promise() -> None:
    humans = np.linspace(0, 0.5, 50)  # 50 humans cannot vouch for 1 % at 90 %
    assert conformal_cut(humans, 0.01, 0.9) > humans.max()
    with pytest.raises(DaigtError, match="no held-out human texts"):
        conformal_cut(np.array([]), 0.01, 0.9)


def test_held_out_cuts_are_never_laxer_than_the_oof_cuts() -> None:
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(2000), np.ones(2000)]
    oof = np.r_[rng.beta(2, 5, 2000), rng.beta(5, 2, 2000)]
    cfg = DecisionConfig(unknown_band=True, cut_from="held_out")
    base = choose_thresholds(labels, oof, cfg)
    far_humans = rng.beta(4, 3, 3000)  # humans of a new kind of text score higher
    strict = held_out_thresholds(base, far_humans, cfg)
    assert strict.high > base.high and np.mean(far_humans >= strict.high) <= cfg.target_fpr
    assert strict.low <= strict.high and strict.edge_high is not None and strict.edge_high >= strict.high
    assert (strict.cut_from, strict.confidence) == ("held_out", 0.9)
    near_humans = rng.beta(1, 9, 3000)  # held-out humans that look more human than OOF's: OOF's cut stays
    assert held_out_thresholds(base, near_humans, cfg).high == base.high
    assert Thresholds.from_dict(strict.to_dict()) == strict


def test_decision_config_checks_confidence() -> None:
    with pytest.raises(ConfigError, match="confidence: must lie in"):
        parse(DecisionConfig, {"confidence": 1.0}, "blend.yaml", "decisions")


def test_the_style_view_reads_a_new_topic_as_near_and_a_new_register_as_far() -> None:
    rng = np.random.default_rng(2)
    topics = ["cars", "phones", "school", "summer", "music", "sports"]
    frames = ["In my opinion the {} is important because it helps people, and it is good for them.",
              "I think that the {} should be allowed, but some people do not agree with it."]  # fmt: skip
    texts = [frames[i % 2].format(rng.choice(topics)) for i in range(120)]
    labels = np.arange(120) % 2
    cfg = parse(ShiftConfig, {"view": "function_words", "stop_words": False, "min_df": 1, "max_df": 1.0},
                "blend.yaml", "shift")  # fmt: skip
    scorer = ShiftScorer.fit(pd.Series(texts), labels, np.arange(120) % 3, cfg)
    new_topic = "In my opinion the volcano is important because it helps people, and it is good for them."
    new_register = "lol ok!!! 2 much ... volcano volcano #wow @friend"
    near, far = scorer.in_domain([new_topic, new_register])
    assert near > 0.1 > far


def test_the_style_view_refuses_stop_words_it_is_made_of() -> None:
    with pytest.raises(ConfigError, match="stop_words: the function_words view is made of stop words"):
        parse(ShiftConfig, {"view": "function_words"}, "blend.yaml", "shift")


def test_genres_are_held_out_whole() -> None:
    spec = GroupProtocolSpec(min_essays=1, groups={"yelp": "reviews", "games": "reviews"})
    cfg = EvaluateConfig(loso=None, lopo=None, logo=spec)
    frame = pd.DataFrame({"domain": ["yelp", "games", "news", ""]})
    assert cfg.groups_of("logo", frame).tolist() == ["reviews", "reviews", "news", ""]


def test_a_profile_trains_holds_genres_out_and_publishes_an_ensemble_cut_on_held_out_humans(
    workspace: dict[str, Path],
) -> None:
    """The detector's route through the real entry points, on a profile of the test's own: two domains held out
    in turn, the ai cut raised to the held-out humans' conformal cut, figures per domain with TPR at FPR."""
    from test_generalization import two_domains

    import blend
    import evaluate
    import predict
    import train_fold

    root = workspace["root"]
    frame = two_domains()
    essays, news = root / "essays.csv", root / "news.csv"
    frame[frame["domain"] == "essays"].drop(columns="domain").to_csv(essays, index=False)
    frame[frame["domain"] == "news"].drop(columns="domain").to_csv(news, index=False)  # domain = the file's name
    profile = root / "mine.yaml"
    evaluate_section = {
        "loso": None, "lopo": None, "attack": None, "inner_folds": 2, "transductive": False,
        "output": str(root / "gen.json"), "logo": {"min_essays": 50, "groups": {"news": "press"}},
    }  # fmt: skip
    blend_section = {
        "generalization": str(root / "gen.json"), "pick": "rank_mean",
        "decisions": {"cut_from": "held_out", "confidence": 0.9},
        "shift": {"view": "function_words", "stop_words": False, "min_df": 1, "max_df": 1.0},
    }  # fmt: skip
    project_section = {"models": [str(workspace["model"])], "folds": {"siblings": {"min_similarity": 0.6}}}
    sections = {"project": project_section, "evaluate": evaluate_section}
    profile.write_text(yaml.safe_dump({**sections, "blend": blend_section}))
    common = ["--profile", str(profile), "--config", str(workspace["project"]), "--artifacts",
              str(workspace["artifacts"]), "--train", str(essays), str(news), "--no-progress"]  # fmt: skip
    train_fold.main(["--fold", "all", "--model", "all", "--test", str(workspace["test"]), *common])
    evaluate.main(common)
    out, ensemble = root / "sub" / "submission.csv", root / "ensemble"
    blend.main([*common, "--test", str(workspace["test"]), "--out", str(out), "--ensemble", str(ensemble),
                "--history", str(root / "history.jsonl")])  # fmt: skip
    result = json.loads((root / "gen.json").read_text())
    rows = {r["group"]: r for r in result["splits"]}
    assert set(rows) == {"essays", "press"}  # news held out under its genre's name
    for row in rows.values():
        assert set(row["tpr_at_fpr"]["rank_mean"]) == {"0.01", "0.001"}
        assert len(row["human_scores"]["rank_mean"]) == row["n_human"]
    report = json.loads((out.parent / "report.json").read_text())
    thresholds = report["thresholds"]
    assert (thresholds["cut_from"], thresholds["confidence"]) == ("held_out", 0.9)
    humans = np.concatenate([r["human_scores"]["rank_mean"] for r in result["splits"]])
    assert thresholds["high"] >= conformal_cut(humans, thresholds["target_fpr"], 0.9)
    by_domain = report["trust"]["decisions"]["oof_by_domain"]
    assert set(by_domain) == {"all", "essays", "news"} and "tpr_at_fpr" in by_domain["news"]
    assert "TPR @ 1.0% FPR" in (out.parent / "report.md").read_text()
    curves = report["trust"]["risk_coverage"]  # the ai cut swept from strict to lax: both shares only grow
    assert set(curves) == {"essays", "news"}
    for curve in curves.values():
        assert all(np.all(np.diff(curve[key]) >= 0) for key in ("humans_decided_ai", "ai_decided_ai"))
        assert curve["humans_decided_ai"][-1] > curve["humans_decided_ai"][0]  # up to 20 % of humans by score
    assert (out.parent / "risk_coverage.png").read_bytes()[:4] == b"\x89PNG"
    scored = root / "scored.csv"
    predict.main(["--input", str(news), "--ensemble", str(ensemble), "--output", str(scored), "--no-progress"])
    assert len(pd.read_csv(scored)) == (frame["domain"] == "news").sum()

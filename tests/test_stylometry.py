"""Style features: exact on small hand-made texts, independent of batching, selected by group."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_essays

from daigt.errors import DaigtError
from daigt.stylometry import GROUPS, EssayWords, StyleConfig, previous_occurrence, style_features


def brute_force(words: list[str], window: int) -> dict[str, float]:
    """The diversity and n-gram repetition statistics of one essay, straight from their definitions."""
    n = len(words)
    if n <= window:
        mattr = len(set(words)) / max(n, 1)
    else:
        mattr = float(np.mean([len(set(words[i : i + window])) for i in range(n - window + 1)]) / window)
    out = {
        "div_ttr": len(set(words)) / max(n, 1),
        "div_hapax": sum(1 for w in set(words) if words.count(w) == 1) / max(n, 1),
        "div_mattr": mattr,
        "div_word_len_std": float(np.std([len(w) for w in words])) if words else 0.0,
    }
    for k in (2, 3, 4):
        grams = [tuple(words[i : i + k]) for i in range(n - k + 1)]
        out[f"rep_{k}gram"] = 1 - len(set(grams)) / len(grams) if grams else 0.0
    return out


@pytest.mark.parametrize("window", [1, 3, 10])
def test_batch_statistics_equal_their_per_essay_definitions(window: int) -> None:
    rng = random.Random(window)
    essays = [
        " ".join(rng.choice(["a", "bb", "ccc", "dddd", "ee"]) for _ in range(rng.randint(0, 40))) for _ in range(25)
    ]
    essays[3] = ""  # an essay with no words between others
    got = style_features(pd.Series(essays), ["diversity", "repetition"], StyleConfig(mattr_window=window))
    for i, text in enumerate(essays):
        for name, value in brute_force(text.split(), window).items():
            assert got.loc[i, name] == pytest.approx(value, abs=1e-12), (i, name)


def test_previous_occurrence_points_at_the_last_equal_word() -> None:
    assert previous_occurrence(np.array([0, 1, 0, 2, 0, 1])).tolist() == [-1, -1, 0, -1, 2, 1]
    assert previous_occurrence(np.zeros(0, np.int64)).tolist() == []
    words = EssayWords.of(["a b a", "", "b a B"])  # positions within each essay, never across essays
    assert words.previous.tolist() == [-1, -1, 0, -1, -1, 0] and words.position.tolist() == [0, 1, 2, 0, 1, 2]


def test_repetition_and_diversity_on_hand_made_text() -> None:
    varied = "One cat sat. Two dogs ran far away."
    looped = "The cat sat. The cat sat. The cat sat."
    f = style_features(pd.Series([varied, looped]), ["repetition", "diversity"], StyleConfig(mattr_window=3))
    assert f.loc[0, "rep_sentence"] == 0 and f.loc[1, "rep_sentence"] == pytest.approx(2 / 3)
    assert f.loc[1, "rep_2gram"] == pytest.approx(1 - 3 / 8)  # 9 words, 8 bigrams, 3 distinct
    assert f.loc[0, "div_ttr"] == 1 and f.loc[1, "div_ttr"] == pytest.approx(3 / 9)
    assert f.loc[1, "rep_zlib"] < f.loc[0, "rep_zlib"]  # repeated text compresses better


def test_lexicon_counts_words_missing_from_the_frequency_list() -> None:
    f = style_features(pd.Series(["the qzxvv house blorfed qzxvv", "!!!", "the house"]), ["lexicon"])
    assert f.loc[0, "lex_unknown_rate"] == pytest.approx(3 / 5) and f.loc[0, "lex_unknown_types"] == pytest.approx(
        2 / 5
    )
    assert f.loc[1, "lex_unknown_rate"] == 0 and np.isfinite(f.loc[1]).all()  # no words at all
    assert f.loc[2, "lex_logfreq_mean"] > f.loc[0, "lex_logfreq_mean"]  # common words only


def test_rhythm_typography_and_punctuation() -> None:
    texts = pd.Series(["Short one. This sentence is much longer than that one.", "It ended.Then it, went on"])
    f = style_features(texts, ["rhythm", "typography", "punctuation"])
    assert f.loc[0, "rhy_sentence_mean"] == pytest.approx((2 + 8) / 2)
    assert f.loc[0, "rhy_sentence_std"] == pytest.approx(3)
    assert f.loc[0, "typ_no_space_after_punct"] == 0 and f.loc[1, "typ_no_space_after_punct"] == pytest.approx(1 / 6)
    assert f.loc[1, "pun_comma"] == pytest.approx(1 / 6) and f.loc[1, "pun_period"] == pytest.approx(1 / 6)
    assert f.loc[0, "pun_period"] == pytest.approx(2 / 10) and f.loc[0, "pun_question"] == 0


def test_features_do_not_depend_on_the_batch_or_its_index(essays: pd.DataFrame) -> None:
    texts = essays["text"].head(12)
    texts.index = texts.index * 7 + 3  # a filtered frame's index
    batch = style_features(texts)
    alone = pd.concat([style_features(texts.iloc[[i]]) for i in range(len(texts))], ignore_index=True)
    pd.testing.assert_frame_equal(batch, alone)
    assert len(batch) == 12 and not batch.isna().any().any()


def test_groups_are_selected_by_name_and_unknown_ones_refused() -> None:
    texts = pd.Series(["A text.", ""])
    assert list(style_features(texts, ["rhythm"]).columns) == [
        "rhy_sentence_mean",
        "rhy_sentence_std",
        "rhy_sentence_cv",
    ]
    every = style_features(texts, True)
    assert {c.split("_")[0] for c in every.columns} == {"meta", "lex", "div", "rep", "rhy", "typ", "pun"}
    assert len(GROUPS) == 7 and style_features(texts, False).shape == (2, 0)
    with pytest.raises(DaigtError, match="unknown group"):
        style_features(texts, ["vibes"])


def test_punctuation_columns_do_not_follow_the_config_mapping_order() -> None:
    texts = pd.Series(["Yes! No? Maybe, perhaps; (so) - fine."])
    marks = {"!": "bang", "?": "query", ",": "comma"}
    forward = style_features(texts, ["punctuation"], StyleConfig(marks=marks))
    backward = style_features(texts, ["punctuation"], StyleConfig(marks=dict(reversed(marks.items()))))
    pd.testing.assert_frame_equal(forward, backward)


def test_memo_equals_direct_computation_in_any_order() -> None:
    from daigt.stylometry import StyleMemo

    texts = pd.Series([*make_essays(30)["text"].tolist(), "Short one.", "Short one."])
    memo = StyleMemo(["lexicon", "repetition", "rhythm"], StyleConfig())
    direct = style_features(texts, ["lexicon", "repetition", "rhythm"])
    pd.testing.assert_frame_equal(memo(texts), direct)
    reordered = texts.iloc[::-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(memo(reordered), direct.iloc[::-1].reset_index(drop=True))
    assert memo(texts.head(0)).shape == (0, direct.shape[1])


def test_essays_split_between_processes_give_the_rows_of_one_process(essays: pd.DataFrame) -> None:
    texts = essays["text"].head(30)
    split = style_features(texts, True, jobs=2)  # two spawned processes, 15 essays each
    pd.testing.assert_frame_equal(split, style_features(texts, True, jobs=1))
    assert len(split) == 30


GROUPS_READ = ["lexicon", "repetition", "rhythm"]


def test_cached_rows_are_read_back_by_another_run_and_only_new_essays_are_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daigt import stylometry

    texts = pd.Series([*make_essays(20)["text"].tolist(), "Short one.", "Short one."])
    first = stylometry.StyleMemo(GROUPS_READ, StyleConfig(), tmp_path)
    first(texts)
    assert first.from_cache == 0 and first.path is not None and first.path.is_file()
    asked: list[str] = []
    compute = stylometry.style_features

    def counting(batch: pd.Series, *args: object) -> pd.DataFrame:
        asked.extend(batch)
        return compute(batch, *args)

    monkeypatch.setattr(stylometry, "style_features", counting)
    again = stylometry.StyleMemo(GROUPS_READ, StyleConfig(), tmp_path)
    both = pd.concat([texts, pd.Series(["A new essay, never seen."])], ignore_index=True)
    pd.testing.assert_frame_equal(again(both), compute(both, GROUPS_READ))
    assert asked == ["A new essay, never seen."] and again.from_cache == texts.nunique()


def test_an_unreadable_cache_is_rebuilt_with_one_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from daigt.stylometry import StyleMemo

    texts = make_essays(10)["text"]
    path = StyleMemo(GROUPS_READ, StyleConfig(), tmp_path).path
    assert path is not None
    path.write_bytes(b"not an npz file")
    memo = StyleMemo(GROUPS_READ, StyleConfig(), tmp_path)
    pd.testing.assert_frame_equal(memo(texts), style_features(texts, GROUPS_READ))
    warned = capsys.readouterr().err.strip().splitlines()
    assert len(warned) == 1 and "style cache unreadable" in warned[0]
    assert StyleMemo(GROUPS_READ, StyleConfig(), tmp_path)(texts).shape == (10, len(memo(texts).columns))
    assert capsys.readouterr().err == ""  # rewritten whole


def test_a_cache_that_cannot_be_written_is_one_warning_and_the_rows_are_still_given(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from daigt.stylometry import StyleMemo

    not_a_folder = tmp_path / "folds"
    not_a_folder.write_text("a file where the cache folder should be")
    texts = make_essays(10)["text"]
    memo = StyleMemo(GROUPS_READ, StyleConfig(), not_a_folder)
    pd.testing.assert_frame_equal(memo(texts), style_features(texts, GROUPS_READ))
    warned = capsys.readouterr().err.strip().splitlines()
    assert len(warned) == 1 and "style cache not written" in warned[0]


def test_each_feature_definition_has_its_own_cache_file(tmp_path: Path) -> None:
    from daigt.stylometry import StyleMemo

    paths = {
        StyleMemo(GROUPS_READ, StyleConfig(), tmp_path).path,
        StyleMemo(GROUPS_READ, StyleConfig(mattr_window=40), tmp_path).path,
        StyleMemo(["lexicon"], StyleConfig(), tmp_path).path,
    }
    assert len(paths) == 3

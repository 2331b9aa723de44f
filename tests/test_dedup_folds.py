"""De-duplication and the shared fold assignment: stratified, deterministic, duplicate-aware, guarded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daigt.dedup import DedupConfig, connected_groups, deduplicate, duplicate_clusters
from daigt.errors import DaigtError
from daigt.folds import FoldConfig, assign_folds, load_or_create_folds
from tests.conftest import make_essays

BASE = (
    "students should be required to do community service because it teaches responsibility and helps "
    "the town while giving young people real experience of work and of other people; many schools already "
    "ask for twenty hours a year, and the teachers who run these programs report that pupils come back more "
    "confident, more patient and far better at planning their own time than before they started volunteering"
)


def test_exact_and_near_duplicates_cluster_but_distinct_texts_do_not() -> None:
    texts = [
        BASE,
        BASE.upper() + "  ",
        BASE.replace("town", "city"),
        "a completely different essay about cars " * 3,
        BASE[: len(BASE) // 3],
    ]
    clusters = duplicate_clusters(texts, DedupConfig(near_threshold=0.7))
    assert clusters[0] == clusters[1] == clusters[2]  # case/space variant and a one-word edit
    assert len({clusters[0], clusters[3], clusters[4]}) == 3
    exact_only = duplicate_clusters(texts, DedupConfig(near_threshold=None))
    assert exact_only[0] == exact_only[1] != exact_only[2]


def test_connected_groups_is_transitive() -> None:
    assert connected_groups(["a", "a", "b", "c"], ["x", "y", "y", "z"]).tolist() == [0, 0, 0, 1]
    assert connected_groups(["a", "b", "c"], pairs=[(0, 2)]).tolist() == [0, 1, 0]


def test_drop_keeps_one_per_cluster() -> None:
    frame = pd.DataFrame(
        {
            "id": list("abc"),
            "text": [BASE, BASE + " ", "other words entirely here"],
            "label": [1.0, 1.0, 0.0],
            "group": "",
            "source": "",
        }
    )
    kept, report = deduplicate(frame, DedupConfig(action="drop"))
    assert kept["id"].tolist() == ["a", "c"] and report["dropped"] == 1


def test_clusters_are_cached_per_texts_and_config(tmp_path: Path, monkeypatch) -> None:
    import daigt.dedup as dedup

    texts = [BASE, BASE + " ", "other words entirely here", "and a fourth essay of its own"]
    fresh = dedup.duplicate_clusters(texts, DedupConfig())
    first = dedup.cached_clusters(texts, DedupConfig(), tmp_path)
    assert first.tolist() == fresh.tolist() and len(list(tmp_path.glob("dedup-*.npy"))) == 1

    def must_not_run(*_: object) -> None:
        raise AssertionError("clusters recomputed despite the cache")

    monkeypatch.setattr(dedup, "duplicate_clusters", must_not_run)
    assert dedup.cached_clusters(texts, DedupConfig(), tmp_path).tolist() == fresh.tolist()
    monkeypatch.undo()
    dedup.cached_clusters(texts[:3], DedupConfig(), tmp_path)  # other texts: a new entry
    dedup.cached_clusters(texts, DedupConfig(near_threshold=None), tmp_path)  # other config: a new entry
    assert len(list(tmp_path.glob("dedup-*.npy"))) == 3


def with_clusters(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.rename(columns={"generated": "label", "prompt_name": "group"})
    return deduplicate(frame, DedupConfig())[0]


def test_folds_are_stratified_and_deterministic() -> None:
    frame = with_clusters(make_essays(300))
    cfg = FoldConfig(n_folds=5, seed=1)
    first, second = assign_folds(frame, cfg), assign_folds(frame, cfg)
    assert first.equals(second)
    assert not first["fold"].equals(assign_folds(frame, FoldConfig(n_folds=5, seed=2))["fold"])
    share = frame.assign(fold=first["fold"]).groupby("fold")["label"].mean()
    assert (share - frame["label"].mean()).abs().max() < 0.05
    assert sorted(first["fold"].unique()) == [0, 1, 2, 3, 4]


def test_duplicates_and_prompts_never_straddle_folds() -> None:
    frame = make_essays(200)
    copies = list(range(100, 140, 4))  # ten copies of essay 0, all in its prompt (i % 4 == 0)
    frame.loc[copies, "text"] = frame.loc[0, "text"]
    frame = with_clusters(frame)
    folds = assign_folds(frame, FoldConfig(n_folds=4, seed=0))
    assert folds.loc[[0, *copies], "fold"].nunique() == 1
    by_prompt = assign_folds(frame, FoldConfig(n_folds=4, seed=0, group_by_prompt=True))
    assert frame.assign(fold=by_prompt["fold"]).groupby("group")["fold"].nunique().max() == 1


def test_persisted_folds_are_reused_and_mismatch_is_refused(tmp_path: Path) -> None:
    frame = with_clusters(make_essays(100))
    path, cfg = tmp_path / "folds.csv", FoldConfig(n_folds=3, seed=0)
    created = load_or_create_folds(frame, cfg, path, "train.csv")
    assert path.is_file() and path.with_suffix(".json").is_file()
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    reused = load_or_create_folds(shuffled, cfg, path, "train.csv")
    assert dict(zip(reused["id"], reused["fold"], strict=True)) == dict(
        zip(created["id"], created["fold"], strict=True)
    )
    before = path.read_bytes()
    with pytest.raises(DaigtError, match=r"1 ids are new .*make_folds.py --force"):
        load_or_create_folds(frame.assign(id=frame["id"].where(frame.index != 0, "new")), cfg, path, "train.csv")
    with pytest.raises(DaigtError, match=r"has 3 folds but folds.n_folds is 4"):
        load_or_create_folds(frame, FoldConfig(n_folds=4), path, "train.csv")
    assert path.read_bytes() == before  # never silently re-split


def test_impossible_fold_count_is_a_clear_error() -> None:
    frame = with_clusters(make_essays(30, prompts=2))
    with pytest.raises(DaigtError, match=r"cannot draw 3 folds from 2 groups"):
        assign_folds(frame, FoldConfig(n_folds=3, group_by_prompt=True))
    assert np.isfinite(assign_folds(frame, FoldConfig(n_folds=3))["fold"]).all()


def test_augmented_copies_share_their_parents_fold_even_when_minhash_misses_them(tmp_path: Path) -> None:
    """A file from python -m augment: copies rewritten beyond MinHash's reach still land in their parent's fold
    (else the same essay would be trained on and scored, and OOF would read 1.0)."""
    from daigt.data import load_essays

    parents = make_essays(60, seed=4)
    copies = [
        parents.assign(
            id=parents["id"] + f"_aug{c}",
            text=parents["text"].map(lambda t, c=c: " ".join(reversed(t.split())) + f" variant {c}"),
            parent_id=parents["id"],
        )
        for c in (1, 2)
    ]
    rows = pd.concat([parents.assign(parent_id=parents["id"]), *copies], ignore_index=True)
    path = tmp_path / "train_aug.csv"
    rows.to_csv(path, index=False)

    def folds_of(frame: pd.DataFrame) -> pd.Series:
        clustered, _ = deduplicate(frame, DedupConfig())
        folds = assign_folds(clustered, FoldConfig(n_folds=5, seed=0))["fold"]
        return folds.groupby(rows["id"].str.replace(r"_aug\d$", "", regex=True).to_numpy()).nunique()

    assert (folds_of(load_essays(path, "train")) == 1).all()
    assert (folds_of(load_essays(path, "train").drop(columns="parent_id")) > 1).any()  # MinHash alone misses them

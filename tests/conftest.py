"""Small synthetic essay sets written on the spot: no test reads ../shared/data."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
import yaml

HUMAN_WORDS = [
    "i",
    "think",
    "that",
    "cars",
    "is",
    "bad",
    "becuase",
    "people",
    "dont",
    "care",
    "and",
    "my",
    "friend",
    "say",
    "its",
    "alot",
    "of",
    "fun",
    "but",
]
AI_WORDS = [
    "furthermore",
    "additionally",
    "it",
    "is",
    "important",
    "to",
    "consider",
    "the",
    "significant",
    "benefits",
    "moreover",
    "ultimately",
    "society",
    "overall",
    "crucial",
    "perspective",
]


@pytest.fixture(autouse=True)
def default_output_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts at the default output level: an entry point's --quiet sets it for the whole process
    (essayio.console keeps it in the environment for --jobs workers), so it must not leak into the next test."""
    from daigt.config import PROFILE_ENV
    from essayio.console import ENV

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv(PROFILE_ENV, raising=False)  # --profile is kept in the environment for workers too


def make_essays(n: int, seed: int = 0, prompts: int = 4) -> pd.DataFrame:
    """``n`` essays, about 3/4 AI, drawn from two overlapping vocabularies so AUC is high but not 1."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = 1 if rng.random() < 0.75 else 0
        own, other = (AI_WORDS, HUMAN_WORDS) if label else (HUMAN_WORDS, AI_WORDS)
        words = [rng.choice(own if rng.random() < 0.7 else other) for _ in range(rng.randint(40, 80))]
        rows.append(
            {
                "id": f"e{i:04d}",
                "prompt_name": f"prompt{i % prompts}",
                "text": " ".join(words) + ".",
                "generated": label,
                "source": "llm" if label else "student",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture
def essays() -> pd.DataFrame:
    return make_essays(120)


@pytest.fixture
def workspace(tmp_path: Path, essays: pd.DataFrame) -> dict[str, Path]:
    """A train/test pair and a project config whose folds and artifacts live under tmp_path."""
    return make_workspace(tmp_path, essays)


def make_workspace(tmp_path: Path, essays: pd.DataFrame) -> dict[str, Path]:
    train, test = tmp_path / "train.csv", tmp_path / "test_essays.csv"
    essays.to_csv(train, index=False)
    test_frame = make_essays(9, seed=1)[["id", "prompt_name", "text"]].assign(id=lambda f: "t" + f["id"])
    test_frame.to_csv(test, index=False)
    config = {
        "train": str(train),
        "test": str(test),
        "sample_submission": None,
        "columns": {},
        "folds": {"path": str(tmp_path / "folds" / "folds.csv"), "n_folds": 3, "seed": 7, "group_by_prompt": False},
        "holdout": {"path": str(tmp_path / "folds" / "holdout.csv"), "fraction": 0.0},
        "dedup": {"action": "group", "near_threshold": 0.8},
        "artifacts": str(tmp_path / "artifacts"),
        "models": ["tiny_tfidf"],
    }
    project = tmp_path / "project.yaml"
    project.write_text(yaml.safe_dump(config))
    model = tmp_path / "tiny_tfidf.yaml"
    model.write_text(
        yaml.safe_dump(
            {
                "family": "tfidf",
                "seed": 3,
                "params": {
                    "fit_vocabulary_on": "train+test",
                    "vectorizer": {"analyzer": "word", "ngram_range": [1, 2], "min_df": 1, "sublinear_tf": True},
                    "classifiers": {
                        "nb": {"kind": "multinomial_nb", "weight": 0.5, "params": {"alpha": 0.1}},
                        "sgd": {"kind": "sgd", "weight": 0.5, "params": {"loss": "modified_huber", "max_iter": 200}},
                    },
                },
            }
        )
    )
    return {
        "root": tmp_path,
        "train": train,
        "test": test,
        "project": project,
        "model": model,
        "artifacts": tmp_path / "artifacts",
        "folds": tmp_path / "folds" / "folds.csv",
    }


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny DeBERTa-v2 encoders (with and without dropout) and two tiny Mistrals, saved as from_pretrained
    folders (built once per run)."""
    from tiny_models import tiny_deberta, tiny_mistral

    root = tmp_path_factory.mktemp("tiny_models")
    texts = make_essays(120)["text"].tolist()
    import torch

    def seeded(seed: int, build, *args, **kwargs) -> Path:  # each model's weights from its own seed, any order
        torch.manual_seed(seed)
        return build(*args, **kwargs)

    return {
        "deberta": seeded(0, tiny_deberta, root / "deberta", texts),
        "mistral": seeded(1, tiny_mistral, root / "mistral", texts),
        "mistral_b": seeded(2, tiny_mistral, root / "mistral_b", texts),  # same tokenizer, other weights: a pair
        # no dropout: two ranks draw other dropout masks than one process, so only this one can match exactly
        "deberta_no_dropout": seeded(
            3,
            tiny_deberta,
            root / "deberta_no_dropout",
            texts,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        ),
    }

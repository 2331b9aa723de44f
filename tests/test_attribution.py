"""The second task: generator-family attribution, its open set, and what predict, serve and evaluate say."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from daigt.attribution import AttributionConfig, attribution_figures, fit_attributor, held_out_generator, learnable
from daigt.decisions import AI, HUMAN, UNKNOWN
from daigt.generators import NO_FAMILY, OTHER, GeneratorVocabulary
from daigt.schema import ConfigError, parse

# what each family's texts lean on, beside words every text shares
STYLE = {
    "gpt-4": ["delve", "tapestry", "moreover", "furthermore", "pivotal", "foster", "intricate", "realm"],
    "llama-2-chat": ["certainly", "hey", "absolutely", "awesome", "gonna", "folks", "stuff", "okay"],
    "text-davinci-002": ["thus", "hence", "whereby", "therein", "aforementioned", "herein", "wherein", "thereof"],
}
COMMON = ["school", "students", "learning", "the", "a", "of", "and", "to", "class", "teachers", "day", "work"]


def generator_texts(n_per_source: int, seed: int = 0, sources: tuple[str, ...] = tuple(STYLE)) -> pd.DataFrame:
    """AI texts of each source in ``sources`` (its own style words among common ones), plus as many humans."""
    rng = random.Random(seed)
    rows = []
    for source in sources:
        for _ in range(n_per_source):
            words = [rng.choice(STYLE[source] if rng.random() < 0.3 else COMMON) for _ in range(rng.randint(40, 70))]
            rows.append({"text": " ".join(words), "label": 1.0, "source": source})
    for _ in range(n_per_source):
        rows.append({"text": " ".join(rng.choice(COMMON) for _ in range(50)), "label": 0.0, "source": "student"})
    frame = pd.DataFrame(rows)
    return frame.assign(fold=np.arange(len(frame)) % 3)


@pytest.mark.parametrize(
    ("source", "family"),
    [
        ("gpt-3.5-turbo (concise rewrite)", "openai-chat"),
        ("radek_gpt35", "openai-chat"),
        ("gpt-4-1106-preview", "openai-chat"),
        ("chat_gpt_moth", "openai-chat"),
        ("ChatGPT", "openai-chat"),
        ("text-davinci-002 (rewrite)", "openai-completion"),
        ("gpt-3-ada", "openai-completion"),
        ("llama2_chat", "llama"),
        ("Llama-2-70b", "llama"),
        ("llammistral7binstruct", "mistral"),
        ("gpt-2 (fine-tuned bot)", "gpt-2"),
        ("Claude-instant", OTHER),
        ("rnn (bot)", OTHER),
        ("vicuna-13b-v1.3", OTHER),
        ("ai_essay_xlsx_unknown_llm", NO_FAMILY),
        ("ai_mix_v16_sample", NO_FAMILY),
        ("", NO_FAMILY),
    ],
)
def test_the_vocabulary_names_the_training_files_sources(source: str, family: str) -> None:
    assert GeneratorVocabulary().family(source) == family


def test_humans_have_no_family_and_the_vocabulary_is_checked() -> None:
    families = GeneratorVocabulary().families_of(pd.Series(["gpt-4", "gpt-4"]), np.array([1.0, 0.0]))
    assert list(families) == ["openai-chat", NO_FAMILY]
    with pytest.raises(ConfigError, match=r"attribution.vocabulary.families.llama: '\(' is not a regular expression"):
        parse(AttributionConfig, {"vocabulary": {"families": {"llama": ["("]}}}, "blend.yaml", "attribution")
    with pytest.raises(ConfigError, match="'other' is implied"):
        parse(AttributionConfig, {"vocabulary": {"families": {"other": ["x"]}}}, "blend.yaml", "attribution")


def test_families_under_min_texts_and_unnamed_sources_train_nothing() -> None:
    frame = generator_texts(40).replace({"source": {"text-davinci-002": "ai_mix_v16_sample"}})
    families, classes = learnable(frame, AttributionConfig(min_texts=30))
    assert classes == ["llama", "openai-chat"]
    assert (families[frame["source"] == "ai_mix_v16_sample"] == NO_FAMILY).all()
    _, classes = learnable(frame, AttributionConfig(min_texts=41))
    assert classes == []
    assert fit_attributor(frame, AttributionConfig(min_texts=41)) is None  # nothing to tell apart


def test_attribution_learns_the_families_out_of_fold_and_answers_only_texts_decided_ai() -> None:
    frame = generator_texts(60)
    attributor, oof = fit_attributor(frame, AttributionConfig(min_texts=30))
    assert attributor.classes == ["llama", "openai-chat", "openai-completion"]
    assert len(oof.rows) == 180 and (frame["label"].iloc[oof.rows] == 1).all()
    every_ai = np.full(len(oof.rows), AI, dtype=object)
    generator, _ = attributor.decide(oof.probs, oof.similarity, every_ai)
    figures = attribution_figures(oof.truth, oof.probs, generator, every_ai, attributor.classes)
    assert figures["macro_f1"] > 0.9, figures
    assert np.asarray(figures["confusion"]).sum() == 180
    fresh = generator_texts(10, seed=9, sources=("gpt-4",))
    ai = fresh[fresh["label"] == 1]
    said, probability = attributor.attribute(ai["text"], np.full(len(ai), AI, dtype=object))
    # never a wrong family; unknown for those under the open-set cut (a fifth of a family's own texts) or unsure
    assert set(said) <= {"openai-chat", UNKNOWN} and (said == "openai-chat").mean() >= 0.5, said
    assert ((probability > 0) & (probability <= 1)).all()
    not_ai, _ = attributor.attribute(ai["text"], np.array([HUMAN, UNKNOWN] * 5, dtype=object))
    assert (not_ai == UNKNOWN).all()  # which model, never whether


def test_a_text_unlike_every_family_is_unknown_not_forced_into_one() -> None:
    attributor, _ = fit_attributor(generator_texts(60), AttributionConfig(min_texts=30))
    rng = random.Random(3)
    recipes = ["flour", "butter", "oven", "bake", "dough", "sugar", "whisk", "pan", "cinnamon", "vanilla"]
    unlike = pd.Series([" ".join(rng.choice(recipes) for _ in range(60)) for _ in range(10)])
    said, _ = attributor.attribute(unlike, np.full(10, AI, dtype=object))
    assert (said == UNKNOWN).all(), said
    # because they are unlike the family the classifier would pick (the open set), not for want of a top family
    probs, similarity = attributor.probabilities(unlike)
    top = probs.argmax(axis=1)
    assert (similarity[np.arange(10), top] < attributor.centroid_cuts[top]).all()


def test_max_chars_reads_only_the_head_of_each_text() -> None:
    frame = generator_texts(60)
    attributor, _ = fit_attributor(frame, AttributionConfig(min_texts=30, max_chars=80))
    head = frame["text"].iloc[0][:80]
    probs, _ = attributor.probabilities(pd.Series([head + " tapestry delve", head + " hey okay folks"]))
    np.testing.assert_allclose(probs[0], probs[1])  # what follows the first 80 characters is never read


def test_a_held_out_generator_is_right_wrong_other_or_unknown() -> None:
    said = np.array(["openai-chat", "llama", OTHER, UNKNOWN], dtype=object)
    learnt = held_out_generator(said, "openai-chat", ["llama", "openai-chat", OTHER])
    assert (learnt["right"], learnt["wrong_named"], learnt[OTHER], learnt[UNKNOWN]) == (0.25, 0.25, 0.25, 0.25)
    gone = held_out_generator(said, "mistral", ["llama", "openai-chat", OTHER])
    assert gone["right"] is None and gone["wrong_named"] == 0.5 and not gone["family_learnt"]
    none_decided = held_out_generator(np.array([], dtype=object), "llama", ["llama"])
    assert none_decided["wrong_named"] is None and none_decided["family_learnt"]  # the same keys, always
    outside = held_out_generator(said, OTHER, ["llama", "openai-chat", OTHER])  # e.g. Claude, with other learnt
    assert outside["right"] == 0.25 and outside["wrong_named"] == 0.5

"""Configs: variants with base: merge over the named config; every config kind is checked against its declared
schema, so a misspelled key or a wrong value stops with one line naming the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import blend
import predict
import serve
import train_fold
from daigt.blending import BlendConfig
from daigt.config import BLEND_CONFIG, PROJECT_CONFIG, SERVE_CONFIG, load_config
from daigt.errors import DaigtError
from daigt.model_configs import available_models, load_model_config
from daigt.project import ProjectConfig
from daigt.schema import ConfigError, to_dict
from daigt.service import ServeConfig


def test_variant_overlays_its_base(tmp_path: Path) -> None:
    variant = tmp_path / "variant.yaml"
    variant.write_text(
        "base: tfidf_word\naugment: {recipe: configs/augment/default.yaml}\nparams: {vectorizer: {min_df: 5}}\n"
    )
    spec = load_model_config(str(variant))
    name, config, base = spec.name, spec.config, load_model_config("tfidf_word").config
    assert name == "variant" and config.augment is not None and base.augment is None
    assert config.params.vectorizer.min_df == 5
    assert config.params.vectorizer.ngram_range == base.params.vectorizer.ngram_range == (1, 3)
    assert config.params.classifiers == base.params.classifiers and config.family == "tfidf"


def test_a_vectorizer_default_spelt_out_counts_like_one_left_out(tmp_path: Path) -> None:
    """The features receive what differs from sklearn's defaults: writing a default changes nothing."""
    plain, spelt = tmp_path / "plain.yaml", tmp_path / "spelt.yaml"
    plain.write_text(
        "family: tfidf\nparams: {vectorizer: {ngram_range: [1, 3]}, classifiers: {logistic_regression: {}}}\n"
    )
    spelt.write_text(
        "family: tfidf\nparams: {vectorizer: {ngram_range: [1, 3], analyzer: word, min_df: 1, norm: l2},"
        " classifiers: {logistic_regression: {}}}\n"
    )
    counting = [load_model_config(str(path)).config.params.vectorizer_spec().kwargs() for path in (plain, spelt)]
    assert counting[0] == counting[1] == {"ngram_range": (1, 3)}


def test_a_config_cannot_be_its_own_base(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\n")
    with pytest.raises(DaigtError, match="names the config itself"):
        load_model_config(str(loop))


@pytest.mark.parametrize("name", available_models())
def test_every_shipped_config_validates_and_round_trips(name: str) -> None:
    """The defaults are filled in once, so a config written back and read again is the same config."""
    config = load_model_config(name).config
    again = load_model_config(name).config
    assert to_dict(config) == to_dict(again)
    for cls, path in ((ProjectConfig, PROJECT_CONFIG), (BlendConfig, BLEND_CONFIG), (ServeConfig, SERVE_CONFIG)):
        parsed = load_config(cls, path)
        assert to_dict(load_config(cls, path)) == to_dict(parsed)


MODEL_MISTAKES = [
    ("family: tfidf\nparams: {vectorizer: {ngram_rang: [1, 2]}, classifiers: {multinomial_nb: {}}}\n",
     r"params\.vectorizer\.ngram_rang: unknown key — did you mean 'ngram_range'\?"),
    ("family: tfidf\nparams: {classifiers: {sgd: {params: {alpah: 0.1}}}}\n",
     r"params\.classifiers\.sgd\.params\.alpah: unknown key — did you mean 'alpha'\?"),
    ("family: tfidf\nparams: {classifiers: {forest: {}}}\n", r"classifiers\.forest\.kind: unknown kind 'forest'"),
    ("family: tfidf\nparams: {classifiers: {}}\n", r"params\.classifiers: needs at least one entry"),
    ("family: tfidf\nparams: {vectorizer: {min_df: -3}, classifiers: {multinomial_nb: {}}}\n",
     r"params\.vectorizer: .*min_df"),
    ("family: tfidf\nparams: {vectorizer: {ngram_range: [3]}, classifiers: {multinomial_nb: {}}}\n",
     r"params\.vectorizer\.ngram_range: must be \[low, high\] with 1 <= low <= high, got \[3\]"),
    ("family: tfidf\nparams: {tokenizer: {}, vectorizer: {stop_words: english, binary: true},"
     " classifiers: {multinomial_nb: {}}}\n",
     r"params\.vectorizer: with a tokenizer the vectorizer reads its tokens: leave \['binary', 'stop_words'\] unset"),
    ("family: tfidf\nparams: {vectorizer: {norm: l3}, classifiers: {multinomial_nb: {}}}\n",
     r"params\.vectorizer\.norm: 'l3' is not one of 'l1', 'l2'"),
    ("family: tfidf\nparams: {vectorizer: {sublinear_tf: yes please}, classifiers: {multinomial_nb: {}}}\n",
     r"params\.vectorizer\.sublinear_tf: expected true/false"),
    ("family: tfidf\nparams: {text_view: function_word, classifiers: {multinomial_nb: {}}}\n",
     r"params\.text_view: 'function_word' is not one of .*did you mean 'function_words'"),
    ("family: tfidf\nseeed: 3\nparams: {classifiers: {multinomial_nb: {}}}\n",
     r"seeed: unknown key — did you mean 'seed'"),
    ("family: tfidf\nparams: {classifiers: {sgd: {}}}\n", r"classifiers\.sgd\.params: sgd gives no probabilities"),
    ("family: tfid\n", r"family: unknown model family 'tfid' \(did you mean 'tfidf'"),
    ("params: {}\n", "missing 'family:'"),
    ("family: ngram_lm\nparams: {ordr: 3}\n", r"params\.ordr: unknown key — did you mean 'order'"),
    ("family: ngram_lm\nparams: {order: 0}\n", r"params\.order: must be >= 1"),
    ("family: ngram_lm\nparams: {order: three}\n", r"params\.order: expected an integer, got 'three'"),
    ("family: ngram_lm\nparams: {add_k: 1e-3}\n", r"params\.add_k: expected a number, got '1e-3' \(YAML reads"),
    ("family: ngram_lm\nparams: {classifier: {CC: 2}}\n", r"params\.classifier\.CC: unknown key — did you mean 'C'"),
    ("family: ngram_lm\nparams: {text_view: function_words, tokenizer: {kind: bpe, fit_on: train+test}}\n",
     r"params\.text_view: a tokenizer reads the raw text"),
    ("family: encoder\nparams: {pretrained: x, learing_rate: 0.1}\n", r"params\.learing_rate: unknown key"),
    ("family: encoder\nparams: {pretrained: x, lr: 0.1, precision: fp8}\n", r"params\.precision: 'fp8' is not one of"),
    ("family: encoder\nparams: {pretrained: x, loss: {rankng: 1}}\n", r"params\.loss\.rankng: .*'ranking'"),
    ("family: encoder\nparams: {lr: 0.1}\n", r"params\.pretrained: missing required key"),
    ("family: tfidf\naugment: {recipee: r.yaml}\nparams: {classifiers: {multinomial_nb: {}}}\n",
     r"augment\.recipee: unknown key — did you mean 'recipe'"),
    ("family: tfidf\naugment: {copies: 2}\nparams: {classifiers: {multinomial_nb: {}}}\n", r"augment: needs 'recipe:'"),
    ("family: tfidf\naugment: {each_epoch: r.yaml}\nparams: {classifiers: {multinomial_nb: {}}}\n",
     r"augment\.each_epoch: family 'tfidf' does not train in epochs"),
    ("family: tfidf\ndeobfuscate: {speling: true}\nparams: {classifiers: {multinomial_nb: {}}}\n",
     r"did you mean 'spelling'"),
    ("family: tfidf\nweighting: {by: sorce}\nparams: {classifiers: {multinomial_nb: {}}}\n",
     r"weighting\.by: 'sorce' is not one of 'domain', 'source', 'group' — did you mean 'source'"),
    ("family: tfidf\nweighting: {power: 2}\nparams: {classifiers: {multinomial_nb: {}}}\n",
     r"weighting\.power: must lie in \[0, 1\], got 2"),
    ("family: encoder\nweighting: {}\nparams: {pretrained: x}\n",
     r"weighting: family 'encoder' does not weigh its training rows"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), MODEL_MISTAKES)
def test_model_config_mistakes_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(DaigtError, match=message) as err:
        load_model_config(str(path))
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_fault_in_the_base_is_reported_against_the_base_file(tmp_path: Path) -> None:
    base, variant = tmp_path / "b.yaml", tmp_path / "v.yaml"
    base.write_text("family: ngram_lm\nparams: {ordr: 2}\n")
    variant.write_text(f"base: {base}\nseed: 3\n")
    with pytest.raises(ConfigError, match=rf"^{base}: params\.ordr"):
        load_model_config(str(variant))


OTHER_MISTAKES = [
    (ProjectConfig, "modles: [tfidf_word]\n", r"modles: unknown key — did you mean 'models'"),
    (ProjectConfig, "folds: {n_fold: 3}\n", r"folds\.n_fold: unknown key — did you mean 'n_folds'"),
    (ProjectConfig, "folds: {group_by_promt: true}\n", r"folds\.group_by_promt: .*'group_by_prompt'"),
    (ProjectConfig, "folds: {n_folds: 1}\n", r"folds\.n_folds: must be >= 2"),
    (ProjectConfig, "dedup: {action: merge}\n", r"dedup\.action: 'merge' is not one of 'group', 'drop'"),
    (ProjectConfig, "dedup: {num_perm: 10, bands: 3}\n", r"dedup: num_perm \(10\) must be a positive multiple"),
    (ProjectConfig, "columns: {txt: essay}\n", r"columns\.txt: 'txt' is not a canonical column"),
    (ProjectConfig, "models: tfidf_word\n", r"models: expected a list"),
    (BlendConfig, "stacker: {n_estimator: 10}\n", r"stacker\.n_estimator: unknown key — did you mean 'n_estimators'"),
    (BlendConfig, "features: {meta: [lexicon, rythm]}\n", r"features\.meta: unknown group\(s\) \['rythm'\]"),
    (BlendConfig, "features: {probabilities: false}\n", r"features: selects no stacker features"),
    (BlendConfig, "decisions: {target_fpr: 5}\n", r"decisions\.target_fpr: must lie in \[0, 1\]"),
    (BlendConfig, "decisions: {threshold: best}\n", r"decisions\.threshold: 'best' is not one of"),
    (BlendConfig, "features: {stylometry: {mattr_windw: 3}}\n", r"stylometry\.mattr_windw: .*'mattr_window'"),
    (ServeConfig, "limits: {max_essay: 3}\n", r"limits\.max_essay: unknown key — did you mean 'max_essays'"),
    (ServeConfig, "port: eighty\n", r"port: expected an integer, got 'eighty'"),
    (ServeConfig, "- a\n- b\n", r"expected a mapping at the top level"),
]


@pytest.mark.parametrize(("cls", "text", "message"), OTHER_MISTAKES)
def test_project_blend_and_serve_mistakes_are_one_line_errors(tmp_path: Path, cls, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(DaigtError, match=message) as err:
        load_config(cls, path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_entry_points_stop_on_a_config_typo_with_one_line(workspace: dict[str, Path], tmp_path: Path, capsys) -> None:
    """The typo that used to train nothing and exit 0 (``modles:``), and one per other entry point."""
    project = yaml.safe_load(workspace["project"].read_text())
    project["modles"] = project.pop("models")
    workspace["project"].write_text(yaml.safe_dump(project))
    bad_blend, bad_serve = tmp_path / "blend.yaml", tmp_path / "serve.yaml"
    bad_blend.write_text("stacker: {n_estimator: 10}\n")
    bad_serve.write_text("limits: {max_chars: 10, max_body_byte: 3}\n")
    runs = [
        (train_fold.main, ["--fold", "all", "--model", "all", "--config", str(workspace["project"])], "modles"),
        (blend.main, ["--blend-config", str(bad_blend)], "n_estimator"),
        (serve.main, ["--serve-config", str(bad_serve)], "max_body_byte"),
        (predict.main, ["--input", str(workspace["test"]), "--ensemble", str(tmp_path / "none")], "no saved ensemble"),
    ]
    for main, args, key in runs:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and err.count("\n") == 0 and key in err and "Traceback" not in err


def test_a_set_that_adds_a_section_the_config_lacks_says_so() -> None:
    """--set params.tokenizer.vocab_size on a model without a tokenizer: the error names the added section,
    not only the config's own keys it clashes with."""
    with pytest.raises(DaigtError, match=r"the config has no params\.tokenizer: --set added it"):
        load_model_config("tfidf_word", ["params.tokenizer.vocab_size=8000"])
    load_model_config("tfidf_bpe", ["params.tokenizer.vocab_size=8000"])  # it has one: an ordinary change

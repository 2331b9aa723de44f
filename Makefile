# Two commands on a fresh machine:  `make run`  (set up + the whole pipeline)  and  `make test`.
# `make detector` trains the ensemble predict and serve load by default (writing in the wild).
PY      ?= .venv/bin/python
DATA    ?= data
TRAIN   ?= $(DATA)/train.csv
TEST    ?= $(DATA)/test_essays.csv
# models trained side by side by `make run`, one process each (the CPU families use one core each)
JOBS    ?= 2
# LOSO=1: also refit the pipeline without each source / prompt (src/evaluate.py, ~4 min here) before the blend,
# which then reports those figures and, with pick: auto, picks by them
LOSO    ?= 0
STAMP   := .venv/.installed
# the detector profile trains on whichever of these are in DATA (configs/profiles/detector.yaml)
DETECTOR_TRAIN = $(wildcard $(DATA)/train.csv $(DATA)/broad_train.csv $(DATA)/ood_dev.csv)

.PHONY: setup run detector bench-detector evaluate folds train blend test lint docs bench bench-scale clean package kaggle-upload textattack-env

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt requirements-kaggle.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

run: setup  ## every model in configs/project.yaml, 5 folds each, [generalization], blend -> submissions/submission.csv
	$(PY) src/train_fold.py --fold all --model all --jobs $(JOBS) --train $(TRAIN) --test $(TEST)
	if [ "$(LOSO)" = 1 ]; then $(PY) src/evaluate.py --jobs $(JOBS) --train $(TRAIN); fi
	$(PY) src/blend.py --train $(TRAIN) --test $(TEST)

detector: setup  ## the detector profile: train on every file present, hold out each genre, blend -> ensemble/
	$(if $(DETECTOR_TRAIN),,$(error no train.csv, broad_train.csv or ood_dev.csv in $(DATA): pass DATA=folder))
	$(PY) src/train_fold.py --profile detector --fold all --model all --jobs $(JOBS) --train $(DETECTOR_TRAIN) --test $(TEST)
	$(PY) src/evaluate.py --profile detector --jobs $(JOBS) --train $(DETECTOR_TRAIN)
	$(PY) src/blend.py --profile detector --train $(DETECTOR_TRAIN) --test $(TEST)

evaluate: setup  ## generalization only: leave-one-source-out and leave-one-prompt-out
	$(PY) src/evaluate.py --jobs $(JOBS) --train $(TRAIN)

package: setup  ## the offline Kaggle package of the saved ensemble (dist/kaggle), rehearsed here as Kaggle runs it
	$(PY) src/package.py --out dist/kaggle --rehearse $(TEST) $(if $(DATASET),--dataset $(DATASET))

kaggle-upload: setup  ## upload dist/kaggle as a Kaggle dataset (DATASET=you/slug the first time); docs/kaggle.md
	$(PY) src/package.py --out dist/kaggle --upload $(if $(DATASET),--dataset $(DATASET))

folds: setup
	$(PY) src/make_folds.py --train $(TRAIN)

test: setup
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check src tests benchmarks augment essayio
	$(PY) -m ruff format --check src tests benchmarks augment essayio

docs: setup  ## regenerate docs/configs.md from the config dataclasses (a test fails when it is stale)
	$(PY) -m daigt.config_reference > docs/configs.md

bench: setup
	$(PY) benchmarks/bench_pipeline.py --train $(TRAIN) --test $(TEST)

bench-detector: setup  ## make detector from scratch, 3 times in a private workspace: time and peak memory per step
	$(PY) benchmarks/bench_detector.py --data $(DATA) --repeats 3

# SCALES=1 4 10 (23 is ~100k essays); BASE=1000 takes only the first 1,000 essays as 1x; MAX_RATIO=1.5 fails
# when peak memory per essay at the largest size exceeds 1.5x that of 1x (what .ci/run gates on)
SCALES ?= 1 4 10
bench-scale: setup  ## the default pipeline at k times the training data: time and peak memory per essay vs 1x
	$(PY) benchmarks/bench_scale.py --train $(TRAIN) --test $(TEST) --scales $(SCALES) $(if $(BASE),--base $(BASE)) \
	  $(if $(MAX_RATIO),--max-ratio $(MAX_RATIO))

textattack-env:  ## optional: textattack ops in their own venv (flair pins transformers<5; docs/hardening.md)
	[ -x .venv-textattack/bin/python ] || python3 -m venv .venv-textattack
	.venv-textattack/bin/python -m pip install --quiet -r requirements-textattack.txt
	PYTHONWARNINGS="ignore:Editable installation" .venv-textattack/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	.venv-textattack/bin/python -m augment.resources

clean:
	rm -rf artifacts ensemble ensemble-kaggle dist folds/detector submissions/detector folds/dedup-*.npy folds/attacked-*.json folds/style-*.npz folds/shift-*.json folds/folds.* folds/holdout.* submissions/*.csv submissions/*.json \
	  submissions/*.png
	find submissions -name '*.md' ! -name README.md -delete

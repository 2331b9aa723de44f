"""Train one model config on K-1 folds and predict the held-out fold and the test set.

python src/train_fold.py --fold 0                       # default model, default data
python src/train_fold.py --fold all --model tfidf_char --train data/train.csv --test data/test_essays.csv
python src/train_fold.py --fold all --model all         # every model listed in configs/project.yaml
python src/train_fold.py --fold 0 --model minilm --deepspeed configs/deepspeed/zero2.json
torchrun --nproc_per_node=2 src/train_fold.py --fold 0 --model deberta_v3_large --deepspeed configs/deepspeed/zero3.json
deepspeed --num_gpus=8 src/train_fold.py --fold 0 --model mistral_7b_lora
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: augment/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # src/: the daigt package

from daigt import distributed
from daigt.config import deep_merge, load_model_config
from daigt.errors import DaigtError, cli_entry
from daigt.project import Project
from daigt.train import FoldTrainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fold", required=True, help="fold number, or 'all'")
    parser.add_argument(
        "--model",
        help="config name under configs/models/, a YAML path, or 'all' "
        "(default: the first of 'models:' in the project config)",
    )
    parser.add_argument("--train", help="training essays (default: 'train:' in the project config)")
    parser.add_argument("--test", help="test essays to predict (default: 'test:' in the project config)")
    parser.add_argument(
        "--seed", type=int, help="model seed (default: the model config's seed, else 42); the folds keep their own seed"
    )
    parser.add_argument("--config", help="project config (default: configs/project.yaml)")
    parser.add_argument("--artifacts", help="output root (default: 'artifacts:' in the project config)")
    parser.add_argument("--force", action="store_true", help="retrain folds that are already up to date")
    parser.add_argument(
        "--deepspeed", help="DeepSpeed JSON config for transformer families (overrides params.deepspeed)"
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)  # set by launchers
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (CI logs)")
    return parser.parse_args(argv)


def parse_folds(value: str) -> list[int] | None:
    if value == "all":
        return None
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise DaigtError(f"--fold {value!r}: give a fold number, a comma list, or 'all'") from None


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    project = Project.load(args.config, args.train, args.test, args.artifacts)
    folds = parse_folds(args.fold)
    names = project.models if args.model == "all" else [args.model or (project.models or ["tfidf_word"])[0]]
    for name in names:
        model_name, model_config = load_model_config(name)
        if args.deepspeed:
            model_config = deep_merge(model_config, {"params": {"deepspeed": args.deepspeed}})
        seed = args.seed if args.seed is not None else int(model_config.get("seed", 42))
        trainer = FoldTrainer(project, model_name, model_config, seed, progress=not args.no_progress)
        results = trainer.run(folds, force=args.force)
        for m in results if distributed.is_main() else []:
            out = project.artifacts / model_name / f"fold{m['fold']}"
            print(
                f"[{model_name}] fold {m['fold']}: AUC {m['auc']:.4f}  fit {m['fit_seconds']:.1f}s  "
                f"predict {m['predict_seconds']:.1f}s  -> {out}"
            )


if __name__ == "__main__":
    main()

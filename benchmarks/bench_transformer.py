"""Training and inference throughput of the encoder family against a plain Hugging Face Trainer run.

Both sides fine-tune the same model (default: configs/models/minilm.yaml, i.e. all-MiniLM-L6-v2) on the
same essays at the same max length and batch size, one epoch, in this one process, alternating runs so
machine noise hits both. The baseline is what a notebook does: Trainer with its defaults (fp32, dynamic
padding by DataCollatorWithPadding, no length grouping, the model's own dropout). Prints medians over
--repeats and the ratio ours / baseline.

    python benchmarks/bench_transformer.py --train ../shared/data/train.csv --n 256 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace

import pandas as pd

from daigt.config import ModelConfig
from daigt.data import load_essays
from daigt.families import FitContext, get_family
from daigt.model_configs import load_model_config


def ours(config: ModelConfig, frame: pd.DataFrame, deepspeed: str | None = None) -> tuple[float, float]:
    """(train samples/s, inference texts/s) through the family's own loop (optionally under DeepSpeed)."""
    params = replace(config.params, epochs=1, checkpoint_every=0, deepspeed=deepspeed)
    family = get_family(config.family)(params, seed=0)
    family.fit(frame, FitContext(progress=False))
    train_rate = family.fit_report()["train_samples_per_second"]
    started = time.perf_counter()
    family.predict(frame)
    return train_rate, len(frame) / (time.perf_counter() - started)


def hf_trainer(config: ModelConfig, frame: pd.DataFrame) -> tuple[float, float]:
    """The same model, data, max length and batch size through transformers.Trainer with its defaults."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    from daigt.hf.loading import resolve_pretrained

    params = config.params
    path = resolve_pretrained(params.pretrained)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="regression")
    encoded = tokenizer(frame["text"].tolist(), truncation=True, max_length=params.max_length)
    data = [
        {"input_ids": ids, "attention_mask": mask, "labels": float(label)}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], frame["label"], strict=True)
    ]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            use_cpu=True,
            per_device_train_batch_size=params.batch_size,
            per_device_eval_batch_size=params.eval_batch_size,
            num_train_epochs=1,
            learning_rate=params.lr,
            report_to=[],
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
        train_rate = trainer.train().metrics["train_samples_per_second"]
        started = time.perf_counter()
        trainer.predict(data)
        return train_rate, len(frame) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default="../shared/data/train.csv")
    parser.add_argument("--model", default="minilm", help="an encoder config under configs/models/")
    parser.add_argument("--n", type=int, default=256, help="essays per run (a stratified sample)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--deepspeed", nargs="*", default=["zero2", "zero3"], help="also time these DeepSpeed configs")
    args = parser.parse_args()
    config = load_model_config(args.model).config
    essays = load_essays(args.train, role="train")
    frame = essays.sample(n=min(args.n, len(essays)), random_state=0).reset_index(drop=True)
    variants = {"ours": ours, "hf_trainer": hf_trainer}
    for zero in args.deepspeed:
        variants[f"ours_{zero}"] = lambda c, f, zero=zero: ours(c, f, f"configs/deepspeed/{zero}.json")
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, fn in variants.items():
            runs[name].append(fn(config, frame))
            print(
                f"repeat {repeat}: {name:10s} train {runs[name][-1][0]:6.2f} samples/s  "
                f"inference {runs[name][-1][1]:6.2f} texts/s",
                flush=True,
            )
    med = {name: [statistics.median(r[i] for r in rs) for i in (0, 1)] for name, rs in runs.items()}
    print(
        f"\n{args.model}: {len(frame)} essays, max_length {config.params.max_length}, "
        f"batch {config.params.batch_size}, median of {args.repeats}"
    )
    print("| run | train samples/s | inference texts/s |\n|---|---|---|")
    for name, (train_rate, infer_rate) in med.items():
        print(f"| {name} | {train_rate:.2f} | {infer_rate:.2f} |")
    print(
        f"| ratio ours / hf_trainer | x{med['ours'][0] / med['hf_trainer'][0]:.2f} | "
        f"x{med['ours'][1] / med['hf_trainer'][1]:.2f} |"
    )


if __name__ == "__main__":
    main()

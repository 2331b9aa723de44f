"""Peak memory per rank when a model is built and trained under DeepSpeed ZeRO-2 vs ZeRO-3 (two ranks).

ZeRO-3 builds the model under ``deepspeed.zero.Init`` (transformers' integration, switched on by the family),
so no rank ever holds the whole fp32 model; ZeRO-2 builds it whole on every rank and then shards optimizer
state and gradients. The model is a Mistral-architecture causal LM with random weights, large enough
(``--hidden``, ``--layers``; ~150M parameters, ~0.6 GB fp32 by default) for the difference to show on CPU.
Each engine trains ``--steps`` optimizer steps of one fold through the real entry point under torchrun.

    python benchmarks/bench_zero_memory.py --train ../shared/data/train.csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
# glibc raises its mmap threshold after large frees, so freed blocks stay in the heap and count as resident:
# zero.Init builds each layer and frees all but the shard, and without a fixed threshold its peak RSS equals
# ZeRO-2's although the rank holds half the weights. A fixed threshold makes RSS show the live memory.
QUIET_MALLOC = {"OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": str(2**20)}


def build_model_folder(folder: Path, texts: list[str], hidden: int, layers: int) -> int:
    """A sentencepiece tokenizer and a Mistral config (no weights: the family builds it with init: random)."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer, MistralConfig

    folder.mkdir(parents=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(folder / "tokenizer"), vocab_size=2000, minloglevel=2,
        pad_id=-1, unk_id=0, bos_id=1, eos_id=2, hard_vocab_limit=False,
    )  # fmt: skip
    LlamaTokenizer.from_pretrained(folder).save_pretrained(folder)
    config = MistralConfig(
        vocab_size=32000, hidden_size=hidden, intermediate_size=int(hidden * 3.5), num_hidden_layers=layers,
        num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=512,
    )  # fmt: skip
    config.save_pretrained(folder)
    attention = 2 * hidden * hidden + 2 * hidden * (hidden // 2)
    return config.vocab_size * hidden + layers * (attention + 3 * hidden * config.intermediate_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True)
    parser.add_argument("--n", type=int, default=120, help="training essays (3 folds; fold 0 is trained)")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    frame = pd.read_csv(args.train).sample(args.n, random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frame.to_csv(work / "train.csv", index=False)
        frame.head(8).drop(columns=["generated"]).to_csv(work / "test.csv", index=False)
        n_params = build_model_folder(work / "model", frame["text"].tolist(), args.hidden, args.layers)
        project = yaml.safe_load((ROOT / "configs" / "project.yaml").read_text())
        project.update(train=str(work / "train.csv"), test=str(work / "test.csv"), artifacts=str(work / "artifacts"))
        project["folds"].update(path=str(work / "folds" / "folds.csv"), n_folds=3)
        project["holdout"].update(path=str(work / "folds" / "holdout.csv"), fraction=0.0)
        (work / "project.yaml").write_text(yaml.safe_dump(project))
        model = {
            "family": "causal_lm",
            "seed": 0,
            "params": {"pretrained": str(work / "model"), "init": "random", "max_length": 64, "batch_size": 2,
                       "epochs": 1, "max_steps": args.steps, "precision": "bf16"},
        }  # fmt: skip
        rows = []
        for engine in ("zero2", "zero3"):
            (work / f"{engine}.yaml").write_text(yaml.safe_dump(model))
            cmd = [
                sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                f"--master_port={29600 + len(rows)}", str(ROOT / "src" / "train_fold.py"), "--fold", "0",
                "--model", str(work / f"{engine}.yaml"), "--config", str(work / "project.yaml"),
                "--deepspeed", f"configs/deepspeed/{engine}.json", "--no-progress",
            ]  # fmt: skip
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **QUIET_MALLOC})
            if done.returncode != 0:
                raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
            metrics = json.loads((work / "artifacts" / engine / "fold0" / "metrics.json").read_text())
            at_load, training = metrics["peak_rss_mb_at_load_per_rank"], metrics["peak_rss_mb_training_per_rank"]
            rate = metrics["train_samples_per_second"]
            rows.append((engine, max(at_load), max(training), metrics["peak_rss_mb"], rate))
    print(f"Mistral architecture, random init, {n_params / 1e6:.0f}M parameters ({n_params * 4 / 2**30:.2f} GiB fp32)")
    print(
        "| engine (2 ranks, bf16) | peak RSS per rank once built and initialised, MiB | after training, MiB "
        "| rank 0 at the end (gathers the weights to save), MiB | train samples/s |"
    )
    print("|---|---|---|---|---|")
    for engine, at_load, training, end, rate in rows:
        print(f"| {engine} | {at_load:,.0f} | {training:,.0f} | {end:,.0f} | {rate} |")
    print(
        f"ZeRO-3 / ZeRO-2 peak memory per rank at load: {rows[1][1] / rows[0][1]:.2f}, "
        f"after training: {rows[1][2] / rows[0][2]:.2f}"
    )


if __name__ == "__main__":
    main()

"""The issue's plain probe on the trainer's own held-out splits: how hard each seed's split is for a
textbook fine-tuning loop, beside what `bench_train_sentences.py` measured for the trainer.

Issue #18 set its 0.84 floor from "a plain probe" (mean pooling + linear head, AdamW 5e-5 with
warm-up and linear decay, max_length 64, batch 32, 2 epochs, no length sorting) that reached
0.8406 on a 20% split of its own. This runs that recipe through `bench_train_sentences.plain_loop`
(transformers' AutoModel, get_linear_schedule_with_warmup, batches in random order) on the splits
the trainer is measured on, seeds 0-4, so the two can be read split by split. Nothing here chooses
a setting: the trainer's defaults were chosen on inner splits (`recipes_sentences.py`).

    .venv/bin/python benchmarks/probe_sentences.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from simdex.engine import packaged
from simdex.engine.training.config import EncoderTrainConfig

from bench_train_sentences import plain_loop
from common import machine, write_section

PROBE = {"lr": 5e-5, "batch_size": 32, "epochs": 2, "max_length": 64}  # plain_loop: cross-entropy, one run


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    texts, labels = packaged.reviews("rotten_tomatoes")
    texts = [t.strip() for t in texts]
    cfg = EncoderTrainConfig(**PROBE)
    outs = []
    for seed in range(args.seeds):
        outs.append({"seed": seed, **plain_loop(texts, labels, cfg, seed)})
        print(json.dumps(outs[-1]), flush=True)
    accuracies = [o["accuracy"] for o in outs]
    lines = [f"Machine: {machine()}", "",
             "Issue #18's plain probe (mean pooling + linear head, AdamW 5e-5, warm-up 10% then linear decay, "
             "max_length 64, batch 32, 2 epochs, cross-entropy, batches in random order, one run) through "
             "`bench_train_sentences.plain_loop`, on the trainer's held-out splits (20%, stratified, seeds "
             f"0-{args.seeds - 1}). Its head is the trainer's: on the normalised pooled vector, at 10x the "
             "encoder's learning rate. Nothing was chosen here.", "",
             "| seed | held-out accuracy | training (s) | examples/s |", "|---|---|---|---|"]
    lines += [f"| {o['seed']} | {o['accuracy']:.4f} | {o['seconds']:.0f} | {o['examples_per_second']:.1f} |"
              for o in outs]
    lines += ["", f"Over seeds 0-{args.seeds - 1}: mean {np.mean(accuracies):.4f}, lowest {min(accuracies):.4f}, "
                  f"highest {max(accuracies):.4f}."]
    write_section("probe_sentences", "## The issue's plain probe on the trainer's splits (`probe_sentences.py`)\n\n"
                  + "\n".join(lines))


if __name__ == "__main__":
    main()

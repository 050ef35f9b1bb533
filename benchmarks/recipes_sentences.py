"""Recipes for fine-tuning a sentence store's encoder, compared where the reported figure cannot
be touched: inner splits of seed 0's training 80% of Rotten Tomatoes (itself split 80/20, with
inner seeds 1 and 2), so the held-out 20% that `bench_train_sentences.py` reports is never read.

Each recipe is the trainer's own (engine/training/encoder.py's EncoderTrainee: the store's
all-MiniLM-L6-v2, mean pooling, a linear head on the normalised output, AdamW with warm-up and
linear decay, clipping, length-sorted pools) with one change or a bundle of them:

- `lpft`: the head starts from the logistic head fitted on the fixed encodings (linear probing
  then fine-tuning, Kumar et al. 2022), not from a random one;
- `llrd`: layer-wise learning-rate decay (each layer below the top at that factor of the one above);
- `ls`: label smoothing; `epochs`; `batch_size`; `freeze_emb`: the token embeddings stay fixed;
- `contrastive`: the weight of the supervised contrastive term (Gunel et al. 2021) mixed with the
  cross-entropy, `tau` its temperature (0: cross-entropy only, the defaults until stop 27);
- every run also reports the average of its epochs' weights from epoch `avg_from` on;
- `--soup K`: instead of the recipes, K runs of the defaults from one start averaged into one
  model (a model soup, the trainer's `--soup`), beside each run alone.

It prints and writes the inner accuracy after every epoch, so early stopping, more epochs and
weight averaging can all be read off one run, and the inner held-out texts' 10-neighbour label
agreement after the last epoch. Accuracy on the CPU is deterministic; the time is not a measure here.

    cd benchmarks
    ../.venv/bin/python recipes_sentences.py       # every recipe on splits 1 and 2: about an hour
    # the choice of the defaults' contrastive term (about 26 minutes):
    ../.venv/bin/python recipes_sentences.py --recipes '[{"contrastive": 0}, {}]' --splits 1,2,3,4 --section contrastive
    # the choice of batches of 64 (stop 28; then the winner alone on --splits 3,4):
    ../.venv/bin/python recipes_sentences.py --splits 1,2 --section batch --recipes '[{"lr": 5e-5, "batch_size": 32},
        {"lr": 2e-4, "batch_size": 32}, {"batch_size": 64}, {"contrastive": 0.7, "batch_size": 32}]'
    # run-to-run noise (stop 28): the defaults with training seeds 1-3 on one inner split
    ../.venv/bin/python recipes_sentences.py --recipes '[{"seed": 1}, {"seed": 2}, {"seed": 3}]' --splits 1 \
        --section training_noise
    # soups (stop 29): three runs of the defaults per split averaged into one model (about 35 minutes)
    ../.venv/bin/python recipes_sentences.py --soup 3 --splits 1,2,3,4 --section soup

Batches were of 32 texts until stop 28 (64 since): to rerun an earlier section's recipes as they
ran, add `"batch_size": 32` to each.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from simdex.engine import packaged
from simdex.engine.sentences.model import Encoder
from simdex.engine.training.config import EncoderTrainConfig
from simdex.engine.training.encoder import (TEMPERATURE, EncoderTrainee, decays, frozen_head, two_class_head,
                                            warm_up_then_decay)
from simdex.engine.training.labelled import held_out
from simdex.engine.training.report import label_agreement
from simdex.engine.training.scores import accuracy_and_f1

from common import machine, write_section

RECIPES = [
    {"contrastive": 0},  # cross-entropy only (the defaults until stop 27), and the same with:
    {"contrastive": 0, "lpft": True},
    {"contrastive": 0, "epochs": 5, "avg_from": 3},
    {"contrastive": 0, "lpft": True, "llrd": 0.85, "epochs": 4, "ls": 0.1},
    {"contrastive": 0, "batch_size": 16},
    {"contrastive": 0, "freeze_emb": True},
    {"contrastive": 0.9, "tau": 0.3},  # Gunel et al. 2021's setting for SST-2
    {},  # the defaults: the contrastive term at weight 0.5, temperature 0.1
]
SPLITS = (1, 2)


def run(texts, labels, encodings, encoder, split, lpft=False, llrd=1.0, ls=0.0, freeze_emb=False, avg_from=2,
        tau=TEMPERATURE, **settings) -> dict:
    import torch

    cfg = EncoderTrainConfig(**settings).check()
    val = held_out(labels, 0.2, split)
    train, test = np.flatnonzero(~val), np.flatnonzero(val)
    torch.manual_seed(cfg.seed)
    trainee = EncoderTrainee(encoder.folder, encoder.pooling, texts, labels, cfg, "cpu", encoder.max_length)
    model, head = trainee.model["encoder"], trainee.model["head"]
    if lpft:
        start = two_class_head(frozen_head(encodings, labels, train)[0].numpy())
        head.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in start.items()})
    if freeze_emb:
        model.embeddings.word_embeddings.weight.requires_grad_(False)
    layers = model.config.num_hidden_layers

    def depth(name):  # 0: embeddings, 1..layers: the encoder's layers, layers + 1: the pooler
        if name.startswith("embeddings"):
            return 0
        return int(name.split(".")[2]) + 1 if name.startswith("encoder.layer.") else layers + 1

    groups = [{"params": [p], "lr": cfg.lr * llrd ** (layers + 1 - depth(n)),
               "weight_decay": cfg.weight_decay if decays(n, p) else 0.0}
              for n, p in model.named_parameters() if p.requires_grad]
    groups.append({"params": list(head.parameters()), "weight_decay": 0.0, "lr": 10 * cfg.lr})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    schedule = warm_up_then_decay(optimizer, cfg.epochs * -(-len(train) // cfg.batch_size), cfg.warmup)
    started, per_epoch, average, averaged = time.perf_counter(), [], None, 0
    for epoch in range(cfg.epochs):
        trainee.model.train()
        for rows in trainee.batches(train, np.random.default_rng((cfg.seed, epoch))):
            loss = trainee.loss(rows, label_smoothing=ls, temperature=tau)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), cfg.clip)
            optimizer.step()
            schedule.step()
        per_epoch.append(round(accuracy_and_f1(trainee.probabilities(test), labels[test])[0], 4))
        if epoch + 1 >= avg_from:
            state = {k: v.detach().clone().float() for k, v in trainee.model.state_dict().items()}
            if average is None:
                average = state
            else:
                for k in average:
                    average[k] += (state[k] - average[k]) / (averaged + 1)
            averaged += 1
    out = {"split": split, "per_epoch": per_epoch, "seconds": round(time.perf_counter() - started),
           "agreement": [round(label_agreement(encodings, labels, train, test), 4),
                         round(label_agreement(unit_vectors(trainee, len(labels)), labels, train, test), 4)]}
    if averaged > 1:
        trainee.model.load_state_dict(average)
        out["averaged"] = round(accuracy_and_f1(trainee.probabilities(test), labels[test])[0], 4)
    return out


def soup_run(texts, labels, encodings, encoder, split, members: int = 3) -> dict:
    """`members` runs of the defaults from one start (the head drawn with seed 0), each with its own
    batch order (seeded (member, epoch)) and dropout (seeded 1000 + member), to their last epoch;
    each one's inner accuracy, then the soups of the first 2, 3, ... (their weights averaged, as
    engine/training/soup.py does) and, for comparison, the ensembles (their probabilities averaged)."""
    import torch

    cfg = EncoderTrainConfig().check()
    val = held_out(labels, 0.2, split)
    train, test = np.flatnonzero(~val), np.flatnonzero(val)
    states, probabilities, out = [], [], {"split": split, "members": []}
    for member in range(members):
        torch.manual_seed(0)
        trainee = EncoderTrainee(encoder.folder, encoder.pooling, texts, labels, cfg, "cpu", encoder.max_length)
        torch.manual_seed(1000 + member)
        per_epoch = []
        for epoch in range(cfg.epochs):
            trainee.model.train()
            for rows in trainee.batches(train, np.random.default_rng((member, epoch))):
                loss = trainee.loss(rows)
                trainee.optimizers[0].zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), cfg.clip)
                trainee.optimizers[0].step()
                trainee.schedules[0].step()
            per_epoch.append(round(accuracy_and_f1(trainee.probabilities(test), labels[test])[0], 4))
        out["members"].append(per_epoch)
        probabilities.append(trainee.probabilities(test))
        states.append({k: v.detach().clone().float() for k, v in trainee.model.state_dict().items()})
    for k in range(2, members + 1):
        trainee.model.load_state_dict({name: sum(state[name] for state in states[:k]) / k for name in states[0]})
        out[f"soup{k}"] = round(accuracy_and_f1(trainee.probabilities(test), labels[test])[0], 4)
        out[f"ensemble{k}"] = round(accuracy_and_f1(np.mean(probabilities[:k], 0), labels[test])[0], 4)
    out["agreement"] = [round(label_agreement(encodings, labels, train, test), 4),
                        round(label_agreement(unit_vectors(trainee, len(labels)), labels, train, test), 4)]
    return out


def soup_table(outs: list[dict]) -> list[str]:
    """Markdown: each split's runs alone and their soups, then the means."""
    members = len(outs[0]["members"])
    sizes = range(2, members + 1)
    lines = ["| split | each run alone: inner accuracy per epoch | runs alone: mean at the last epoch | "
             + " | ".join(f"soup of {k} (ensemble)" for k in sizes) + " | 10-NN label agreement before -> after "
             "(the soup) |", "|---|---|---|" + "---|" * len(sizes) + "---|"]
    for out in outs:
        lines.append(f"| {out['split']} | " + "; ".join(" / ".join(f"{a:.4f}" for a in run) for run in out["members"])
                     + f" | {np.mean([run[-1] for run in out['members']]):.4f} | "
                     + " | ".join(f"{out[f'soup{k}']:.4f} ({out[f'ensemble{k}']:.4f})" for k in sizes)
                     + f" | {out['agreement'][0]:.4f} -> {out['agreement'][1]:.4f} |")
    lines.append(f"| mean | | {np.mean([[run[-1] for run in o['members']] for o in outs]):.4f} | "
                 + " | ".join(f"{np.mean([o[f'soup{k}'] for o in outs]):.4f} "
                              f"({np.mean([o[f'ensemble{k}'] for o in outs]):.4f})" for k in sizes) + " | |")
    return lines


def write_soup(outs: list[dict], section: str, arguments: str) -> None:
    splits = ", ".join(str(o["split"]) for o in outs)
    write_section(section, f"## Sentence-store soups on inner splits (`recipes_sentences.py {arguments}`)\n\n"
                  + "\n".join([f"Machine: {machine()}", "",
                               "Inner splits of seed 0's training 80% of Rotten Tomatoes (80/20, inner seeds "
                               f"{splits}; the reported held-out 20% never read). The defaults, run to their last "
                               "epoch from one start (the same head) with different batch orders and dropout; a soup "
                               "averages the runs' weights into one model, an ensemble (for comparison only: it is not "
                               "one model) their probabilities.", ""] + soup_table(outs)))


def unit_vectors(trainee, n: int, batch: int = 64) -> np.ndarray:
    """Every row's pooled unit vector from the trainee's encoder as it stands (what re-encoding
    the store would write)."""
    import torch

    trainee.model.eval()
    with torch.no_grad():
        out = np.concatenate([trainee.vectors(np.arange(start, min(n, start + batch)), trainee.full_ids).numpy()
                              for start in range(0, n, batch)])
    trainee.model.train()
    return out


def table(results: list[tuple[dict, list[dict]]]) -> list[str]:
    """Markdown: each recipe's run on each split, then its means over the splits."""
    lines = ["| recipe | split | inner accuracy per epoch | avg | 10-NN label agreement before -> after |",
             "|---|---|---|---|---|"]
    for recipe, outs in results:
        for out in outs:
            agreement = " -> ".join(f"{a:.4f}" for a in out["agreement"]) if "agreement" in out else "not measured"
            average = f"{out['averaged']:.4f}" if "averaged" in out else "-"
            lines.append(f"| {name(recipe)} | {out['split']} | {' / '.join(f'{a:.4f}' for a in out['per_epoch'])} | "
                         f"{average} | {agreement} |")
    lines += ["", "Means over the inner splits:", "",
              "| recipe | splits | at the last epoch | at its best epoch |", "|---|---|---|---|"]
    for recipe, outs in results:
        lines.append(f"| {name(recipe)} | {', '.join(str(o['split']) for o in outs)} | "
                     f"{np.mean([o['per_epoch'][-1] for o in outs]):.4f} | "
                     f"{np.mean([max(o['per_epoch']) for o in outs]):.4f} |")
    return lines


def name(recipe: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in recipe.items()) or \
        f"defaults (3 epochs, contrastive {EncoderTrainConfig.contrastive} at temperature {TEMPERATURE})"


def main() -> None:
    import argparse

    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", type=json.loads, default=RECIPES,
                        help="a JSON list of recipes (settings beside the defaults)")
    parser.add_argument("--splits", default=",".join(map(str, SPLITS)), help="inner seeds, comma-separated")
    parser.add_argument("--section", default="sentence_recipes", help="RESULTS.md's section to write")
    parser.add_argument("--soup", type=int, default=0,
                        help="instead of the recipes: this many runs of the defaults on each split, and their soups")
    args = parser.parse_args()
    splits = [int(s) for s in args.splits.split(",")]
    torch.set_num_threads(2)
    texts, labels = packaged.reviews("rotten_tomatoes")
    keep = np.flatnonzero(~held_out(labels, 0.2, 0))  # seed 0's training rows only
    texts, labels = [texts[i] for i in keep], labels[keep]
    encoder = Encoder.load(device="cpu")
    encodings = encoder.encode_all(texts)
    if args.soup:
        outs = []
        for split in splits:
            outs.append(soup_run(texts, labels, encodings, encoder, split, args.soup))
            print(json.dumps(outs[-1]), flush=True)
        write_soup(outs, args.section, " ".join(sys.argv[1:]))
        return
    results = []
    for recipe in args.recipes:
        outs = [run(texts, labels, encodings, encoder, split, **recipe) for split in splits]
        for out in outs:
            print(json.dumps({**recipe, **out}), flush=True)
        results.append((recipe, outs))
    write(results, splits, args.section, " ".join(sys.argv[1:]))


def write(results, splits, section: str, arguments: str) -> None:
    write_section(section, f"## Sentence-store recipes on inner splits (`recipes_sentences.py {arguments}`)\n\n"
                  + "\n".join([f"Machine: {machine()}", "",
                               "Inner splits of seed 0's training 80% of Rotten Tomatoes (80/20, inner seeds "
                               f"{', '.join(map(str, splits))}; the reported held-out 20% never read). Inner "
                               "accuracy after each epoch; `avg`: the average of the epochs' weights from the second "
                               "(the third with 5 epochs) on; the label agreement of each inner held-out text's 10 "
                               "nearest inner training texts, with the original encoder and after the last epoch.",
                               ""] + table(results)))


if __name__ == "__main__":
    main()

"""One training loop for every model the trainer fits (after nanoGPT's train.py).

    fitted = fit(trainee, labels, train_rows, val_rows, epochs=3, patience=1, seed=0,
                 checkpoint=store.training_directory() / "checkpoint.pt", identity={...})

A trainee (engine/training/words.py, encoder.py) says how to cut the training rows into batches,
the loss of a batch, and the probability of label 1 for rows; the loop does the rest, the same
for every model: seeded epochs (the order of epoch e is drawn with (seed, e), or (*seed, e) for a
tuple seed, so a resumed run sees what an uninterrupted one would), zero_grad / backward /
optional clipping / step / schedule, validation accuracy after every epoch with early stopping on
it, and a checkpoint dict {model, optimizers, identity, epoch, best, best_state, torch_rng} after
every epoch, which `resume=True` continues from exactly. The progress of each epoch goes to
`progress`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SimdexError
from ..files import atomic_write
from ..progress import SILENT, Progress
from .scores import accuracy_and_f1


@dataclass
class Fitted:
    accuracy: float   # validation accuracy of the best epoch's model (the one kept)
    f1: float
    best_epoch: int
    epochs_run: int
    seconds: float    # in the loop (training and validation), after loading
    step_seconds: float = 0.0  # of which in training steps (forward, backward, clipping, step)


def fit(trainee, labels: np.ndarray, train_rows: np.ndarray, val_rows: np.ndarray, *, epochs: int, patience: int,
        seed: int | tuple, checkpoint: Path, identity: dict, resume: bool = False, progress: Progress = SILENT,
        label: str = "epoch") -> Fitted:
    """Train `trainee.model` (see the module's notes); it ends holding the best epoch's weights."""
    import torch

    model = trainee.model
    stateful = list(trainee.optimizers) + list(trainee.schedules)
    start, best, best_state, best_epoch = 0, -1.0, None, 0
    if resume:
        start, best, best_state, best_epoch = _resume(checkpoint, identity, model, stateful)
    started = time.perf_counter()
    epochs_run, stale = start, start - best_epoch
    stepping = 0.0
    for epoch in range(start, epochs):
        model.train()
        batches = trainee.batches(train_rows, np.random.default_rng((*np.atleast_1d(seed), epoch)))
        total_loss, seen = 0.0, 0
        with progress.task(f"{label} {epoch + 1}/{epochs}", total=len(train_rows), unit="examples") as task:
            for rows in batches:
                step_started = time.perf_counter()
                loss = trainee.loss(rows)
                for optimizer in trainee.optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if trainee.clip:
                    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                                   trainee.clip)
                for thing in stateful:  # optimizers, then their schedules
                    thing.step()
                value = float(loss.detach())
                if not math.isfinite(value):  # nothing is written: the current version stays as it was
                    raise SimdexError(f"training diverged in {label} {epoch + 1} (the loss became {value}): "
                                      f"try a lower learning rate (--lr; a word store's vectors: --embedding-lr)")
                total_loss += value * len(rows)
                stepping += time.perf_counter() - step_started
                seen += len(rows)
                task.update(seen, loss=total_loss / seen)
            accuracy, _ = accuracy_and_f1(trainee.probabilities(val_rows), labels[val_rows])
            epochs_run = epoch + 1
            if accuracy > best:
                best, best_epoch, stale = accuracy, epoch + 1, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            _save(checkpoint, identity, model, stateful, epoch + 1, best, best_state, best_epoch)
            task.note(f"{label} {epoch + 1}/{epochs}: loss {total_loss / max(seen, 1):.4f}  validation accuracy "
                      f"{accuracy:.4f}  ({time.perf_counter() - started:.0f}s)")
        if stale >= patience:
            break
    model.load_state_dict(best_state)
    accuracy, f1 = accuracy_and_f1(trainee.probabilities(val_rows), labels[val_rows])
    return Fitted(accuracy, f1, best_epoch, epochs_run, time.perf_counter() - started, stepping)


def _save(path: Path, identity, model, stateful, epoch, best, best_state, best_epoch) -> None:
    import torch

    with atomic_write(path, sync=False) as tmp:
        torch.save({**identity, "model": model.state_dict(), "optimizer": [o.state_dict() for o in stateful],
                    "epoch": epoch, "best": best, "best_state": best_state, "best_epoch": best_epoch,
                    "torch_rng": torch.get_rng_state()}, tmp)


def check_resumable(path: Path, identity: dict) -> None:
    """Before any expensive step: a checkpoint to resume from exists and is for these settings."""
    import torch

    if not path.exists():
        raise SimdexError(f"{path}: no checkpoint to resume from (train without --resume)")
    checkpoint = torch.load(path, weights_only=False, map_location="cpu", mmap=True)
    for key in identity:
        if checkpoint.get(key) != identity[key]:
            raise SimdexError(f"{path}: the checkpoint is for other {key} settings; train without --resume to "
                              f"start again")


def _resume(path: Path, identity, model, stateful):
    import torch

    check_resumable(path, identity)
    checkpoint = torch.load(path, weights_only=False, map_location="cpu")
    model.load_state_dict(checkpoint["model"])
    for thing, state in zip(stateful, checkpoint["optimizer"]):  # optimizers and their schedules
        thing.load_state_dict(state)
    torch.set_rng_state(checkpoint["torch_rng"])  # dropout continues as it would have
    return checkpoint["epoch"], checkpoint["best"], checkpoint["best_state"], checkpoint["best_epoch"]

"""A model soup (Wortsman et al. 2022): several runs of one recipe averaged weight by weight into one
model. The sentence trainer fits its encoder this way (`EncoderTrainConfig.soup` runs; 1: a
single run, as the loop gives it).

    trainee, soup = fit_soup(make_trainee, labels, train, val, members=3, seed=0, epochs=3, patience=1,
                             checkpoint=folder / "checkpoint.pt", identity={...})

Every member starts from the same weights (the store's encoder and one head, drawn with `seed`)
and differs only in the order of its batches and its dropout, so the members end in one basin of
the loss and their average is a model of its own, on average more accurate than its runs alone
though not always than the luckiest (inner splits and held-out seeds: benchmarks/RESULTS.md).
Each member is fitted by the loop (loop.py) with its own early stopping; its best weights are
kept beside the checkpoint (`member-N.pt`), so that `resume=True` continues after the members
already fitted and inside the one that was interrupted. The soup is one model: one
encoder to keep, re-encode with and search with, one head for `simdex predict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..progress import SILENT, Progress
from .loop import Fitted, check_resumable, fit
from .scores import accuracy_and_f1


@dataclass
class Soup:
    accuracy: float         # validation accuracy of the averaged model (of the one run, with one member)
    f1: float
    members: list[Fitted]   # each run as the loop fitted it
    seconds: float          # in the loops, all members together, and the soup's validation
    step_seconds: float

    @property
    def epochs_run(self) -> int:
        return sum(member.epochs_run for member in self.members)


def fit_soup(make_trainee, labels: np.ndarray, train: np.ndarray, val: np.ndarray, *, members: int, seed: int,
             epochs: int, patience: int, checkpoint: Path, identity: dict, resume: bool = False,
             progress: Progress = SILENT):
    """Fit `members` trainees from `make_trainee()` and average them (see the module's notes).
    Returns the last trainee, holding the soup, and the Soup's figures."""
    import time

    import torch

    total, fitted, trainee = None, [], None
    for member in range(members):
        kept = checkpoint.parent / f"member-{member}.pt"
        mine = {**identity, "member": member} if members > 1 else identity
        if resume and members > 1 and _is_for(kept, mine):
            saved = torch.load(kept, weights_only=False, map_location="cpu")
            state, run = saved["state"], Fitted(**saved["fitted"])
        else:
            trainee = _start(make_trainee, seed, member)
            run = fit(trainee, labels, train, val, epochs=epochs, patience=patience,
                      seed=(seed, member) if member else seed, checkpoint=checkpoint, identity=mine,
                      resume=resume and _is_for(checkpoint, mine), progress=progress,
                      label=f"member {member + 1}/{members}: epoch" if members > 1 else "epoch")
            state = trainee.model.state_dict()
            if members > 1:
                with atomic_write(kept, sync=False) as tmp:
                    torch.save({**mine, "state": state, "fitted": asdict(run)}, tmp)
        fitted.append(run)
        if members == 1:
            return trainee, Soup(run.accuracy, run.f1, fitted, run.seconds, run.step_seconds)
        floats = {name: value.detach().clone().float() for name, value in state.items() if value.is_floating_point()}
        total = floats if total is None else {name: total[name] + value for name, value in floats.items()}
    trainee = trainee or _start(make_trainee, seed, 0)  # (every run was kept: a model to hold the soup)
    started = time.perf_counter()
    with progress.task(f"averaging the {members} runs", total=len(val), unit="texts") as task:
        trainee.model.load_state_dict({name: value / members for name, value in total.items()}, strict=False)
        accuracy, f1 = accuracy_and_f1(trainee.probabilities(val), labels[val])
        task.update(len(val))
        task.note(f"soup of {members} runs (their validation accuracies "
                  f"{', '.join(f'{m.accuracy:.4f}' for m in fitted)}): validation accuracy {accuracy:.4f}")
    return trainee, Soup(accuracy, f1, fitted, sum(m.seconds for m in fitted) + time.perf_counter() - started,
                         sum(m.step_seconds for m in fitted))


def _start(make_trainee, seed: int, member: int):
    """A member's trainee: its head drawn with `seed` (every member's starts the same), then its own
    dropout (member 0's is a single run's)."""
    import torch

    torch.manual_seed(seed)
    trainee = make_trainee()
    if member:
        torch.manual_seed(int(np.random.SeedSequence([seed, member]).generate_state(1)[0]))
    return trainee


def clear(checkpoint: Path) -> None:
    """The checkpoint and the members' weights, after a run has written its version."""
    checkpoint.unlink(missing_ok=True)
    for kept in checkpoint.parent.glob("member-*.pt"):
        kept.unlink(missing_ok=True)


def _is_for(path: Path, identity: dict) -> bool:
    from ..errors import SimdexError

    try:
        check_resumable(path, identity)
    except SimdexError:
        return False
    return True

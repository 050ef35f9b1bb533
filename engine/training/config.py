"""The trainer's settings: one dataclass, the one source of their defaults (the CLI reads them
from here)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadOption, check_choice

MODELS = ("bag", "bilstm", "cnn")  # engine/training/classifiers.py


@dataclass
class TrainConfig:
    model: str = "bag"          # bag | bilstm | cnn (engine/classifiers.py)
    freeze: bool = False        # train the classifier only; the word vectors stay as they are
    init: str = "store"         # store: start from the current version; random: from scratch
    dim: int | None = None      # with init=random: the vectors' dimension (default 50)
    epochs: int = 8             # at most: early stopping on validation accuracy
    patience: int = 2           # epochs without a better validation accuracy before stopping
    lr: float = 1e-3            # the classifier's (and n-gram features') learning rate (Adam)
    embedding_lr: float = 1e-4  # the word vectors' learning rate: small, so they keep what they knew
    batch_size: int = 32
    val_split: float = 0.2      # held out, stratified, seeded
    seed: int = 0
    max_tokens: int = 400       # bilstm and cnn read a text's first tokens
    min_count: int = 2          # a new word must appear this often in the training split
    min_ngram_docs: int = 1     # bag: an n-gram must appear in this many training texts to be a feature
    add_new_words: bool = False  # new words join the store's vocabulary
    refine: bool = True         # give the vectors a polarity coordinate (engine/refine.py)
    sentences: str = "auto"     # on | off | auto (on for short texts): average with a sentence-encoder head
    device: str | None = None   # cpu | cuda; None: cuda when there is one

    def check(self) -> "TrainConfig":
        check_choice("--model", self.model, MODELS)
        check_choice("--init", self.init, ("store", "random"))
        check_choice("--sentences", self.sentences, ("auto", "on", "off"))
        if not 0 < self.val_split < 1:
            raise BadOption(f"--val-split must be between 0 and 1, got {self.val_split}")
        if self.epochs < 1 or self.lr <= 0 or self.embedding_lr <= 0:
            raise BadOption("--epochs must be at least 1 and --lr positive")
        if self.dim is not None and self.init != "random":
            raise BadOption("--dim is for --init random (a store's vectors have their own dimension)")
        return self

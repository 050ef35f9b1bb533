"""The trainer's settings: one dataclass per kind of store, the one source of their defaults (the
CLI reads them from here and passes on only what a user gave).

Word stores (`TrainConfig`): a classifier over the store's embeddings, which are fine-tuned with
their own learning rate and tied to their original rows (an L2-SP term, Li et al. 2018: the tie
times the squared distance of each row a batch uses to where it started). The defaults and how
they were chosen are in the README ("Training"); the trade-off between accuracy and what the
vectors keep, measured on IMDB, is in benchmarks/RESULTS.md.

Sentence stores (`EncoderTrainConfig`): the store's BERT encoder fine-tuned with a linear head on
its pooled, normalised output, three runs of it averaged into one model (soup.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import BadOption, check_choice

MODELS = ("bag", "bilstm", "cnn")  # engine/training/classifiers.py


@dataclass
class TrainConfig:
    """Sentiment training on a word store."""

    model: str = "bag"          # bag (mean of embeddings -> Linear -> ReLU -> Linear) | bilstm | cnn
    freeze: bool = False        # train the classifier only; the word vectors stay as they are
    init: str = "store"         # store: start from the current version; random: from scratch
    dim: int | None = None      # with init=random: the vectors' dimension (default 50)
    epochs: int = 10            # at most: early stopping on validation accuracy
    patience: int = 2           # epochs without a better validation accuracy before stopping
    lr: float = 1e-3            # the classifier's learning rate (Adam), decaying linearly to zero
    embedding_lr: float = 0.1   # the word vectors' own learning rate (SGD), decaying likewise
    tie: float = 10.0           # L2-SP: pull of each trained row towards its original vector (0: none)
    batch_size: int = 32
    val_split: float = 0.2      # held out, stratified, seeded
    seed: int = 0
    max_tokens: int = 400       # bilstm and cnn read a text's first tokens
    min_count: int = 2          # a new word must appear this often in the training split
    ngrams: bool = False        # bag: hashed word and bigram features with naive-Bayes ratios beside the vectors
    min_ngram_docs: int = 1     # with ngrams: an n-gram must appear in this many training texts
    add_new_words: bool = False  # new words join the store's vocabulary
    polarity: bool = True       # the polarity step after training (engine/training/polarity.py)
    polarity_strength: float | None = None  # its strength; None: chosen on polar words held out of its probe
    sentence_head: bool = False  # a second view: a logistic head on MiniLM encodings, reported on its own
    device: str | None = None   # cpu | cuda; None: cuda when there is one

    def check(self) -> "TrainConfig":
        check_choice("--model", self.model, MODELS)
        check_choice("--init", self.init, ("store", "random"))
        _check_split(self.val_split, self.epochs)
        if self.lr <= 0 or self.embedding_lr <= 0 or self.tie < 0:
            raise BadOption("--lr and --embedding-lr must be positive, --tie at least 0")
        if self.dim is not None and self.init != "random":
            raise BadOption("--dim is for --init random (a store's vectors have their own dimension)")
        if self.ngrams and self.model != "bag":
            raise BadOption("--ngrams is for --model bag")
        return self


@dataclass
class EncoderTrainConfig:
    """Sentiment training on a sentence store: its encoder fine-tuned with a linear head."""

    freeze: bool = False        # the baseline: a logistic head on the fixed encodings, no new version
    epochs: int = 3             # at most: early stopping on validation accuracy
    patience: int = 1           # epochs without a better validation accuracy before stopping
    lr: float = 1e-4            # AdamW's peak learning rate for the encoder (the head's is 10x)
    warmup: float = 0.1         # share of the steps the learning rate warms up over, then decays linearly
    weight_decay: float = 0.01  # AdamW, on weights (not biases or LayerNorm)
    clip: float = 1.0           # gradient norm clipping
    contrastive: float = 0.5    # weight of a supervised contrastive term on the pooled vectors (0: cross-entropy only)
    batch_size: int = 64        # more of each label's texts per batch for the contrastive term (inner splits: README)
    max_length: int | None = None  # tokens a text is cut to while training (None: the store's encoder's)
    soup: int = 3               # runs averaged weight by weight into one model (a model soup; 1: a single run)
    val_split: float = 0.2      # held out, stratified, seeded
    seed: int = 0
    precision: str = "auto"     # auto: bfloat16 autocast on CUDA (where it has it), else float32; fp32; bf16
    device: str | None = None   # cpu | cuda; None: cuda when there is one

    def check(self) -> "EncoderTrainConfig":
        _check_split(self.val_split, self.epochs)
        check_choice("--precision", self.precision, ("auto", "fp32", "bf16"))
        if self.lr <= 0 or not 0 <= self.warmup < 1 or self.clip <= 0 or self.batch_size < 1:
            raise BadOption("--lr and --clip must be positive, --warmup in [0, 1), --batch-size at least 1")
        if not 0 <= self.contrastive < 1:
            raise BadOption(f"--contrastive must be in [0, 1), got {self.contrastive}")
        if self.soup < 1:
            raise BadOption(f"--soup must be at least 1, got {self.soup}")
        if self.max_length is not None and not 1 <= self.max_length <= 512:
            raise BadOption(f"--max-length must be between 1 and 512, got {self.max_length}")
        return self


def _check_split(val_split: float, epochs: int) -> None:
    if not 0 < val_split < 1:
        raise BadOption(f"--val-split must be between 0 and 1, got {val_split}")
    if epochs < 1:
        raise BadOption("--epochs must be at least 1")


def config_for(kind: str, **given):
    """The config for a store of `kind` ("words" or "sentences") with the options a user gave
    (None: not given, the dataclass's default); an option the other kind's trainer takes is an error."""
    cls = TrainConfig if kind == "words" else EncoderTrainConfig
    names = {f.name for f in fields(cls)}
    given = {name: value for name, value in given.items() if value is not None}
    wrong = sorted(name for name in given if name not in names)
    if wrong:
        other = "word stores" if kind == "sentences" else "sentence stores"
        raise BadOption(f"{', '.join('--' + name.replace('_', '-') for name in wrong)}: only for {other} "
                        f"(this store holds {kind})")
    return cls(**given).check()

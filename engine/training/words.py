"""Fitting a classifier over a word store's embeddings: the data as rows of the embedding layer,
and the trainee the loop (loop.py) drives.

    data = WordData(texts, labels, store, cfg)
    trainee = WordTrainee(data, cfg, store)
    fit(trainee, data.labels, data.train, data.val, ...)
    rows = trainee.trained_rows()       # the fine-tuned vectors of data.store_rows, in that order

The embedding layer holds only the words of the data (store rows, and new words seen at least
`min_count` times in the training split), so a step touches kilobytes, not the 400,000-row
matrix. The vectors have their own learning rate and are tied to where they started: the
objective adds `tie` times the squared distance of each row the batch uses from its original
vector (L2-SP, Li et al. 2018), so a row moves as far as the reviews' evidence about it pulls,
and a word no batch uses never moves.

The rows step by plain SGD (`TiedSGD`), not Adam: Adam divides each row's step by its own
gradient's scale, so every row a batch touches moves at the full rate whether the reviews agree
about it or not (on IMDB the untied bag's analogies fell from 0.497 to 0.108 with SparseAdam,
and a tie that kept them held the bag at 0.834); SGD moves a row as far as its evidence adds
up. The tie is applied as its exact (proximal) step after the gradient's, so a strong tie pulls
a row back without overshooting its original vector, at any learning rate.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from .classifiers import BUCKETS, PAD, UNK, build_classifier, dense_and_sparse
from .config import TrainConfig
from .labelled import held_out, tokenize


class WordData:
    """Tokenized texts as rows of the embedding layer, split into training and validation."""

    def __init__(self, texts, labels: np.ndarray, store, cfg: TrainConfig):
        val = held_out(labels, cfg.val_split, cfg.seed)
        tokens = [tokenize(text) for text in texts]
        known = store.key_to_id() if cfg.init == "store" else {}
        train_counts = Counter(word for i in np.flatnonzero(~val) for word in tokens[i])
        seen = Counter(word for row in tokens for word in row)
        stored = sorted((w for w in seen if w in known), key=lambda w: known[w])
        new = sorted((w for w, c in train_counts.items() if c >= cfg.min_count and w not in known),
                     key=lambda w: (-train_counts[w], w))
        self.words = ["<pad>", "<unk>"] + stored + new
        self.store_rows = np.array([known[w] for w in stored], dtype=np.int64)
        self.new_words = new
        index = {word: i for i, word in enumerate(self.words)}
        self.ids = [np.array([index.get(w, UNK) for w in row] or [UNK], dtype=np.int64) for row in tokens]
        self.tokens = tokens
        self.labels = labels
        self.train, self.val = np.flatnonzero(~val), np.flatnonzero(val)
        self.frequent_ngrams = self.ngram_ratios = None
        if cfg.ngrams:
            self._ngram_features(cfg.min_ngram_docs)

    def _ngram_features(self, min_docs: int) -> None:
        """Each n-gram's naive-Bayes log-count ratio over the training split (Wang & Manning 2012);
        an n-gram in fewer than `min_docs` training texts is only noise, and left out."""
        docs = np.zeros((2, BUCKETS), dtype=np.int32)  # training texts holding each n-gram, by label
        for i in self.train:
            docs[self.labels[i], np.unique(ngram_ids(self.ids[i], BUCKETS))] += 1
        self.frequent_ngrams = docs.sum(axis=0) >= min_docs
        positive, negative = docs[1] + 1.0, docs[0] + 1.0
        ratio = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
        self.ngram_ratios = np.where(self.frequent_ngrams, ratio, 0.0).astype(np.float32)


class TextBatch:
    """What a model reads: flat ids + offsets (and hashed n-grams) for a bag, padded ids for the others."""

    def __init__(self, ids: list, kind: str, max_tokens: int, buckets: int, device: str, frequent_ngrams=None):
        if kind == "bag":
            lengths = np.array([len(row) for row in ids])
            self.flat = torch.from_numpy(np.concatenate(ids)).to(device)
            self.offsets = torch.from_numpy(np.r_[0, np.cumsum(lengths)[:-1]]).to(device)
            if buckets:
                pairs = [ngram_ids(row, buckets) for row in ids]
                if frequent_ngrams is not None:
                    pairs = [p[frequent_ngrams[p]] for p in pairs]
                counts = np.array([len(p) for p in pairs])
                self.ngrams = torch.from_numpy(np.concatenate(pairs)).to(device)
                self.ngram_offsets = torch.from_numpy(np.r_[0, np.cumsum(counts)[:-1]]).to(device)
            self.words = self.flat
        else:
            rows = [row[:max_tokens] for row in ids]
            lengths = [len(row) for row in rows]
            padded = np.zeros((len(rows), max(lengths)), dtype=np.int64)
            for i, row in enumerate(rows):
                padded[i, :len(row)] = row
            self.padded = torch.from_numpy(padded).to(device)
            self.lengths = torch.as_tensor(lengths)
            self.words = self.padded


def ngram_ids(row: np.ndarray, buckets: int) -> np.ndarray:
    """A text's n-gram features, hashed to buckets: each word, and each pair of neighbouring words
    (fastText's input: the classifier's own features beside the word vectors)."""
    words = (row * 2_654_435_761 + 97) % buckets
    if len(row) < 2:
        return words
    return np.concatenate([words, (row[:-1] * 1_000_003 + row[1:]) % buckets])


def word_probabilities(model, ids: list, kind: str, max_tokens: int, device: str, frequent_ngrams=None,
                       batch: int = 256) -> np.ndarray:
    """P(label 1) of tokenized texts: what validation, the report and `simdex predict` all read.
    Evaluates under no_grad and gives the model back in the mode it was in."""
    was_training = model.training
    model.eval()
    positive = []
    with torch.no_grad():
        for start in range(0, len(ids), batch):
            inputs = TextBatch(ids[start:start + batch], kind, max_tokens, getattr(model, "buckets", 0), device,
                               frequent_ngrams)
            positive.append(torch.softmax(model(inputs), dim=1)[:, 1].float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(positive) if positive else np.zeros(0, dtype=np.float32)


class TiedSGD(torch.optim.Optimizer):
    """SGD on an embedding table's sparse gradient, then the tie's exact step for the rows the
    batch used: row <- anchor + (row - anchor) / (1 + lr * 2 * tie * weight), where `weight` is
    the row's share of the batch (set by the trainee before each step; see `WordTrainee._usage`).
    It minimises the same objective as adding tie * weight * |row - anchor|^2 to the loss, but
    the pull can never overshoot, whatever lr * tie."""

    def __init__(self, table: torch.Tensor, anchor: torch.Tensor, lr: float, tie: float):
        super().__init__([table], {"lr": lr})
        self.anchor, self.tie = anchor, tie
        self.usage = None  # (rows, weights) of the coming step

    @torch.no_grad()
    def step(self, closure=None):
        group = self.param_groups[0]
        table, lr = group["params"][0], group["lr"]
        if table.grad is not None:
            grad = table.grad.coalesce()
            table.index_add_(0, grad.indices()[0], grad.values().to(table.dtype), alpha=-lr)
        if self.tie and self.usage is not None:
            rows, weights = self.usage
            shrink = (1 / (1 + lr * 2 * self.tie * weights)).unsqueeze(1)
            table[rows] = self.anchor[rows] + (table[rows] - self.anchor[rows]) * shrink


class WordTrainee:
    """A classifier over the embedding layer, with its optimizers and the tie (see the module's notes)."""

    clip = None  # sparse gradients: no clipping

    def __init__(self, data: WordData, cfg: TrainConfig, store=None):
        self.data, self.cfg = data, cfg
        if cfg.init == "store":
            rows = np.asarray(store.vectors()[data.store_rows], dtype=np.float32)
            dim = rows.shape[1] if len(rows) else store.version.dim
        else:
            dim = cfg.dim or 50
            rows = np.zeros((0, dim), dtype=np.float32)
        generator = np.random.default_rng(cfg.seed)
        # words missing from the store start random, as the tutorial does (at the rows' scale)
        scale = float(np.abs(rows).mean()) if len(rows) else 0.1
        fresh = generator.uniform(-scale, scale, size=(len(data.words) - 2 - len(rows), dim)).astype(np.float32)
        start = np.concatenate([np.zeros((2, dim), np.float32), rows, fresh])
        ratios = torch.from_numpy(data.ngram_ratios) if data.ngram_ratios is not None else None
        self.model = build_classifier(cfg.model, torch.from_numpy(start), cfg.freeze, ratios=ratios).to(cfg.device)
        self.anchor = torch.from_numpy(start.copy()).to(cfg.device)  # (from_pretrained shares `start`'s memory)
        embedding = self.model.embedding.weight
        dense, sparse = dense_and_sparse(self.model)
        self.optimizers = [torch.optim.Adam(dense, lr=cfg.lr)]
        self.rows = None
        if embedding.requires_grad:  # the vectors at their own rate, tied (see the module's notes)
            self.rows = TiedSGD(embedding, self.anchor, cfg.embedding_lr, cfg.tie)
            self.optimizers.append(self.rows)
        features = [p for p in sparse if p is not embedding]
        if features:  # n-gram features, learnt from scratch at the classifier's rate
            self.optimizers.append(torch.optim.SparseAdam(features, lr=cfg.lr))
        steps = cfg.epochs * -(-len(data.train) // cfg.batch_size)
        self.schedules = [torch.optim.lr_scheduler.LambdaLR(  # linear decay to zero (fastText's schedule)
            optimizer, lambda step: max(0.0, 1 - step / steps)) for optimizer in self.optimizers]

    def batches(self, rows: np.ndarray, rng) -> list[np.ndarray]:
        order = rng.permutation(rows)
        return [order[start:start + self.cfg.batch_size] for start in range(0, len(order), self.cfg.batch_size)]

    def loss(self, rows: np.ndarray):
        cfg, data = self.cfg, self.data
        inputs = TextBatch([data.ids[i] for i in rows], cfg.model, cfg.max_tokens, getattr(self.model, "buckets", 0),
                           cfg.device, data.frequent_ngrams)
        labels = torch.as_tensor(data.labels[rows], dtype=torch.long, device=cfg.device)
        if self.rows is not None and self.cfg.tie > 0:
            self.rows.usage = self._usage(inputs, len(rows))
        return torch.nn.functional.cross_entropy(self.model(inputs), labels)

    @staticmethod
    def _usage(inputs, texts: int):
        """L2-SP weighted as the data weighs each row: the tie's term is the mean over the batch's
        texts of the mean over a text's tokens of the squared distance of the token's row from
        where it started, so a row is pulled back in proportion to how much the batch uses it, as
        the classifier's gradient pushes it, and one tie means the same for short and long texts.
        Returns (rows, weights): each row's weight in that term."""
        if inputs.words.dim() == 1:  # a bag: flat ids, texts by offsets
            ids = inputs.words
            owner = torch.bucketize(torch.arange(len(ids), device=ids.device), inputs.offsets, right=True) - 1
        else:  # padded ids
            real = inputs.words != PAD
            ids = inputs.words[real]
            owner = torch.nonzero(real)[:, 0]
        tokens = torch.zeros(texts, device=ids.device).index_add_(0, owner, torch.ones(len(ids), device=ids.device))
        share = 1 / (tokens.clamp(min=1)[owner] * texts)
        rows, slot = torch.unique(ids, return_inverse=True)
        return rows, torch.zeros(len(rows), device=ids.device).index_add_(0, slot, share)

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        data, cfg = self.data, self.cfg
        return word_probabilities(self.model, [data.ids[i] for i in rows], cfg.model, cfg.max_tokens, cfg.device,
                                  data.frequent_ngrams)

    def trained_rows(self) -> np.ndarray:
        """The embedding layer's rows of the stored words (in data.store_rows' order), then of the new ones."""
        return self.model.embedding.weight.detach().float().cpu().numpy()[2:]

    def saved(self) -> dict:
        """What `simdex predict` needs to read a text exactly as validation did."""
        cfg = self.cfg
        return {"kind": "words", "model": cfg.model, "state": self.model.state_dict(), "words": self.data.words,
                "max_tokens": cfg.max_tokens, "frequent_ngrams": self.data.frequent_ngrams,
                "ngrams": self.data.ngram_ratios is not None}

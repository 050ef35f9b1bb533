"""The tutorial's sentiment models, over an embedding layer that starts from the store's vectors.

    bag     the mean of a text's word vectors -> Linear -> ReLU -> Linear (nn.EmbeddingBag); with
            `ngrams`, hashed word and bigram features (learnt from scratch, as fastText does) and
            their naive-Bayes ratios beside the mean: extra features, off by default
    bilstm  2 layers, bidirectional, dropout, a padding index; the last hidden states of both
            directions concatenated -> Linear
    cnn     Kim (2014): filters of widths 3, 4 and 5 over the word vectors, max-pooled, dropout,
            Linear

Every model takes a `TextBatch` (engine/training/words.py) and returns logits (n, 2); `embedding`
is the word-embedding layer, built with nn.Embedding(Bag).from_pretrained(vectors, freeze=...),
with sparse gradients (a step touches the rows of its batch only). Row 0 is padding, row 1 unknown.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import MODELS  # noqa: F401  (the names build_classifier() takes)

BUCKETS = 1 << 20  # hashed n-gram features of a bag with ngrams
PAD, UNK = 0, 1


class Bag(nn.Module):
    def __init__(self, vectors: torch.Tensor, freeze: bool, hidden: int = 64, dropout: float = 0.2,
                 ratios: torch.Tensor | None = None, ngram_dim: int = 32, buckets: int = BUCKETS):
        super().__init__()
        self.embedding = nn.EmbeddingBag.from_pretrained(vectors, freeze=freeze, mode="mean", sparse=True,
                                                         padding_idx=PAD)
        self.buckets = buckets if ratios is not None else 0
        extra = 0
        if ratios is not None:
            self.ngrams = nn.EmbeddingBag(buckets, ngram_dim, mode="mean", sparse=True)
            nn.init.uniform_(self.ngrams.weight, -0.05, 0.05)
            # the training split's naive-Bayes log-count ratio of each n-gram, fixed: their mean is
            # one more input of the head (NBSVM's evidence, Wang & Manning 2012)
            self.ratios = nn.EmbeddingBag.from_pretrained(ratios.reshape(-1, 1), freeze=True, mode="mean")
            extra = ngram_dim + 1
        # the mean of a text's vectors is mostly what every text shares (the common words): its
        # features are standardised over the batch (BatchNorm), so the head sees the differences
        self.norm = nn.BatchNorm1d(vectors.shape[1])
        self.head = nn.Sequential(nn.Linear(vectors.shape[1] + extra, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 2))

    def forward(self, batch):
        words = self.norm(self.embedding(batch.flat, batch.offsets))
        if not self.buckets:
            return self.head(words)
        ngrams = self.ngrams(batch.ngrams, batch.ngram_offsets)
        evidence = self.ratios(batch.ngrams, batch.ngram_offsets)
        return self.head(torch.cat([words, ngrams, evidence], dim=1))


class BiLSTM(nn.Module):
    def __init__(self, vectors: torch.Tensor, freeze: bool, hidden: int = 128, dropout: float = 0.5):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(vectors, freeze=freeze, padding_idx=PAD, sparse=True)
        self.lstm = nn.LSTM(vectors.shape[1], hidden, num_layers=2, bidirectional=True, dropout=dropout,
                            batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, 2)
        self.buckets = 0

    def forward(self, batch):
        embedded = self.dropout(self.embedding(batch.padded))
        packed = nn.utils.rnn.pack_padded_sequence(embedded, batch.lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, (hidden, _) = self.lstm(packed)
        last = torch.cat([hidden[-2], hidden[-1]], dim=1)  # the top layer, forward and backward
        return self.out(self.dropout(last))


class CNN(nn.Module):
    def __init__(self, vectors: torch.Tensor, freeze: bool, filters: int = 100, widths=(3, 4, 5),
                 dropout: float = 0.5):
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(vectors, freeze=freeze, padding_idx=PAD, sparse=True)
        self.convs = nn.ModuleList(nn.Conv1d(vectors.shape[1], filters, w) for w in widths)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(filters * len(widths), 2)
        self.widest = max(widths)
        self.buckets = 0

    def forward(self, batch):
        padded = batch.padded
        if padded.shape[1] < self.widest:
            padded = nn.functional.pad(padded, (0, self.widest - padded.shape[1]), value=PAD)
        x = self.embedding(padded).transpose(1, 2)
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in self.convs]
        return self.out(self.dropout(torch.cat(pooled, dim=1)))


def build_classifier(name: str, vectors: torch.Tensor, freeze: bool, ratios: torch.Tensor | None = None) -> nn.Module:
    """The model `name` over `vectors` (rows of the embedding layer); `ratios` (a bag's n-gram
    naive-Bayes ratios) turns on the n-gram features."""
    if name == "bag":
        return Bag(vectors, freeze, ratios=ratios)
    return {"bilstm": BiLSTM, "cnn": CNN}[name](vectors, freeze)


def dense_and_sparse(model: nn.Module) -> tuple[list, list]:
    """(parameters with dense gradients, parameters with sparse ones): the embedding tables take
    sparse gradients (only the rows a batch touched), which their optimizers update, so a word that
    no batch touches never moves."""
    sparse = [p for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse
              for p in m.parameters() if p.requires_grad]
    dense = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in sparse)]
    return dense, sparse

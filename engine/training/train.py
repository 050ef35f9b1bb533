"""`simdex train sentiment`: fine-tune a word store's vectors through a sentiment classifier.

    result = train_sentiment(store, dataset="imdb")     # a new version, current, with its report

One readable loop (after nanoGPT's train.py): a seeded, stratified validation split; Adam for
the classifier and sparse updates (SparseAdam) for the word vectors of a bag; early stopping on
validation accuracy; a checkpoint dict {model, optimizer, config, epoch, best} after every
epoch, which `resume=True` continues from. The embedding layer holds only the words of the data
(store rows, and new words seen at least `min_count` times in the training split), so a step
touches kilobytes, not the 400,000-row matrix. For short texts a sentence-encoder head
(SentenceHead) is averaged with the word model; it never touches the word vectors.

Afterwards (fine-tuning, the default): the trained rows go back into a copy of the parent's
matrix, are given a polarity coordinate (engine/refine.py), renormalised and written as a new version
that shares the parent's vocabulary rows (original norms kept) and becomes current; new words
join with `add_new_words`. A frozen run trains the classifier only and writes no version. The
classifier is kept either way (STORE/classifiers/vN.pt) for `simdex predict`.
"""

from __future__ import annotations

import copy
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..backends.local import local_store
from ..devices import pick_device
from ..errors import SimdexError, StoreFault
from ..files import atomic_write
from ..progress import SILENT, Progress, Task
from .config import TrainConfig
from .labelled import read_labelled, tokenize


@dataclass
class TrainResult:
    version: int | None         # the version written, or None (frozen, random init)
    parent: int
    model: str
    val_accuracy: float
    val_f1: float
    train_seconds: float
    epochs: int
    best_epoch: int
    train_examples: int
    val_examples: int
    vocabulary: int             # words in the embedding layer
    new_words: int              # of them not in the store (added with add_new_words)
    freeze: bool
    data: str
    added_new_words: bool = False  # whether the new words joined the store's vocabulary
    sentence_head: bool = False    # whether a sentence-encoder head was averaged in (SentenceHead)
    report: dict = field(default_factory=dict)  # the drift report (engine/drift.py), filled later
    note: str = ""
    index: object = None  # what became of the store's index (indexes.follow.IndexFollow), if it has one

    JSON_FIELDS = ("version", "parent", "model", "val_accuracy", "val_f1", "train_seconds", "epochs", "best_epoch",
                   "train_examples", "val_examples", "vocabulary", "new_words", "added_new_words", "sentence_head",
                   "freeze", "data", "note", "report")


def held_out(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The validation rows (a boolean mask): `share` of each label's rows, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), dtype=bool)
    for label in (0, 1):  # stratified
        members = np.flatnonzero(labels == label)
        val[rng.permutation(members)[:int(round(share * len(members)))]] = True
    return val


class Data:
    """Tokenized reviews as rows of the embedding layer, split into training and validation."""

    def __init__(self, texts, labels, store, cfg: TrainConfig):
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
        self.new_counts = [train_counts[w] for w in new]
        index = {word: i for i, word in enumerate(self.words)}
        self.ids = [np.array([index.get(w, 1) for w in row] or [1], dtype=np.int64) for row in tokens]
        self.tokens = tokens
        self.labels = labels
        self.train, self.val = np.flatnonzero(~val), np.flatnonzero(val)
        self.frequent_ngrams = self.ngram_ratios = None
        if cfg.model == "bag":  # an n-gram seen in fewer training texts than min_ngram_docs is only noise
            from .classifiers import BUCKETS

            docs = np.zeros((2, BUCKETS), dtype=np.int32)  # training texts holding each n-gram, by label
            for i in self.train:
                docs[labels[i], np.unique(ngram_ids(self.ids[i], BUCKETS))] += 1
            self.frequent_ngrams = docs.sum(axis=0) >= cfg.min_ngram_docs
            # each n-gram's naive-Bayes log-count ratio (Wang & Manning 2012), a feature of the bag
            positive, negative = docs[1] + 1.0, docs[0] + 1.0
            ratio = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
            self.ngram_ratios = np.where(self.frequent_ngrams, ratio, 0.0).astype(np.float32)

    def use_sentences(self, cfg: TrainConfig) -> bool:
        """Whether the sentence head joins the word model: --sentences on, or auto and short texts."""
        if cfg.sentences == "auto":
            return float(np.median([len(row) for row in self.tokens])) <= SentenceHead.SHORT
        return cfg.sentences == "on"


class TextBatch:
    """What a model reads: flat ids + offsets and hashed n-grams (bag), or padded ids (the others)."""

    def __init__(self, ids: list, labels, kind: str, max_tokens: int, buckets: int, device: str,
                 frequent_ngrams=None):
        import torch

        self.labels = torch.as_tensor(labels, dtype=torch.long, device=device)
        if kind == "bag":
            lengths = np.array([len(row) for row in ids])
            self.flat = torch.from_numpy(np.concatenate(ids)).to(device)
            self.offsets = torch.from_numpy(np.r_[0, np.cumsum(lengths)[:-1]]).to(device)
            pairs = [ngram_ids(row, buckets) for row in ids]
            if frequent_ngrams is not None:
                pairs = [p[frequent_ngrams[p]] for p in pairs]
            counts = np.array([len(p) for p in pairs])
            self.ngrams = torch.from_numpy(np.concatenate(pairs)).to(device)
            self.ngram_offsets = torch.from_numpy(np.r_[0, np.cumsum(counts)[:-1]]).to(device)
        else:
            rows = [row[:max_tokens] for row in ids]
            lengths = [len(row) for row in rows]
            padded = np.zeros((len(rows), max(lengths)), dtype=np.int64)
            for i, row in enumerate(rows):
                padded[i, :len(row)] = row
            self.padded = torch.from_numpy(padded).to(device)
            self.lengths = torch.as_tensor(lengths)


def ngram_ids(row: np.ndarray, buckets: int) -> np.ndarray:
    """A text's n-gram features, hashed to buckets: each word, and each pair of neighbouring words
    (fastText's input: the classifier's own features beside the word vectors)."""
    words = (row * 2_654_435_761 + 97) % buckets
    if len(row) < 2:
        return words
    return np.concatenate([words, (row[:-1] * 1_000_003 + row[1:]) % buckets])


def train_sentiment(store, data_path: str | None = None, *, dataset: str | None = None, text_column: str = "text",
                    label_column: str = "label", config: TrainConfig | None = None, resume: bool = False,
                    progress: Progress = SILENT) -> TrainResult:
    """Train, then write the fine-tuned vectors as a new version (see the module's notes)."""
    import torch

    cfg = (config or TrainConfig()).check()
    cfg = replace(cfg, device=pick_device(cfg.device))
    store = local_store(store, "sentiment training")
    store.require_kind("words", "sentiment training")
    parent = store.version
    texts, labels, names, source, data_sha = read_labelled(data_path, dataset=dataset, text_column=text_column,
                                                           label_column=label_column)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    data = Data(texts, labels, store, cfg)
    head = SentenceHead.fit(texts, data, cfg, progress) if data.use_sentences(cfg) else None
    model = _model(cfg, data, store)
    from .classifiers import dense_and_sparse

    dense, sparse = dense_and_sparse(model)
    optimizers = [torch.optim.Adam(dense, lr=cfg.lr)]
    if sparse:  # the word vectors move slowly (they must stay what they were); n-gram features learn fast
        optimizers.append(torch.optim.SparseAdam(
            [{"params": [p], "lr": cfg.embedding_lr if p is model.embedding.weight else cfg.lr} for p in sparse]))
    checkpoint_path = store.training_directory() / "checkpoint.pt"  # (a killed run's half-written one is removed)
    identity = {"config": asdict(cfg), "data": data_sha, "parent": parent.version}
    steps = cfg.epochs * -(-len(data.train) // cfg.batch_size)
    schedules = [torch.optim.lr_scheduler.LambdaLR(  # linear decay to zero over the epochs (fastText's schedule)
        optimizer, lambda step: max(0.0, 1 - step / steps)) for optimizer in optimizers]
    start_epoch, best, best_state, best_epoch = 0, -1.0, None, 0
    if resume:
        start_epoch, best, best_state, best_epoch = _resume(checkpoint_path, identity, model, optimizers + schedules)
    buckets = getattr(model, "buckets", 1)
    started = time.perf_counter()
    epochs_run, stale = start_epoch, start_epoch - best_epoch
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = np.random.default_rng((cfg.seed, epoch)).permutation(data.train)  # the same after a resume
        total_loss, seen = 0.0, 0
        task = progress.task(f"epoch {epoch + 1}/{cfg.epochs}", total=len(order), unit="examples")
        for start in range(0, len(order), cfg.batch_size):
            rows = order[start:start + cfg.batch_size]
            batch = TextBatch([data.ids[i] for i in rows], data.labels[rows], cfg.model, cfg.max_tokens, buckets,
                          cfg.device, data.frequent_ngrams)
            loss = torch.nn.functional.cross_entropy(model(batch), batch.labels)
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss.backward()
            for optimizer, schedule in zip(optimizers, schedules):
                optimizer.step()
                schedule.step()
            total_loss += loss.item() * len(rows)
            seen += len(rows)
            task.update(seen, loss=total_loss / seen)
        accuracy, f1 = accuracy_and_f1(model, data, data.val, cfg, buckets, head)
        epochs_run = epoch + 1
        if accuracy > best:
            best, best_epoch, stale = accuracy, epoch + 1, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        _save_checkpoint(checkpoint_path, identity, model, optimizers + schedules, epoch + 1, best, best_state,
                         best_epoch)
        task.note(f"epoch {epoch + 1}/{cfg.epochs}: loss {total_loss / max(seen, 1):.4f}  validation accuracy "
                  f"{accuracy:.4f}  ({time.perf_counter() - started:.0f}s)")
        task.close()
        if stale >= cfg.patience:
            break
    train_seconds = time.perf_counter() - started
    model.load_state_dict(best_state)
    accuracy, f1 = accuracy_and_f1(model, data, data.val, cfg, buckets, head)
    result = TrainResult(None, parent.version, cfg.model, accuracy, f1, train_seconds, epochs_run, best_epoch,
                         len(data.train), len(data.val), len(data.words) - 2, len(data.new_words), cfg.freeze,
                         source, added_new_words=bool(cfg.add_new_words and data.new_words and not cfg.freeze
                                                      and cfg.init == "store"), sentence_head=head is not None)
    classifier = {"config": asdict(cfg), "state": model.state_dict(), "words": data.words, "labels": names,
                  "buckets": buckets, "frequent_ngrams": data.frequent_ngrams, "val_accuracy": accuracy, "data": source,
                  "sentence_head": head.saved() if head else None}
    if cfg.freeze or cfg.init == "random":
        result.note = (f"frozen: the word vectors did not change, so no new version was written; the classifier "
                       f"is kept for version {parent.version}" if cfg.freeze and cfg.init == "store" else
                       f"random init: custom {model.embedding.weight.shape[1]}-d embeddings, trained for the "
                       f"classifier (kept for version {parent.version}) but not written into the store")
        _save_classifier(store, parent.version, classifier)
    else:
        from .polarity import polarity_coordinate, word_polarities

        vectors = _fine_tuned_matrix(store, model, data)
        polarity_report = {}
        if cfg.refine:
            polarities = word_polarities(data.tokens, data.labels, data.train)
            vectors, polarity_report = polarity_coordinate(vectors, store.keys(), polarities,
                                                           WordEncodings(store, cfg.device, progress),
                                                           seed=cfg.seed)
        version = _write_version(store, parent, vectors, model, data, cfg, source, data_sha, result, polarity_report)
        result.version = version.number
        _save_classifier(store, version.number, classifier)
        from .drift import drift_report

        with type(store).open(store.path, version=parent.version) as before:
            result.report = {"polarity": polarity_report, "drift": drift_report(before, store)}
        store.set_metrics(version.number, {**version.metrics, **result.report})
        from ...indexes.follow import keep_in_step

        result.index = keep_in_step(store)
    checkpoint_path.unlink(missing_ok=True)
    return result


def _model(cfg: TrainConfig, data: Data, store):
    import torch

    from .classifiers import build_classifier

    if cfg.init == "store":
        rows = np.asarray(store.vectors()[data.store_rows], dtype=np.float32)
        dim = rows.shape[1]
    else:
        dim, rows = cfg.dim or 50, np.zeros((0, cfg.dim or 50), dtype=np.float32)
    generator = np.random.default_rng(cfg.seed)
    # words missing from the store start random, as the tutorial does (at the rows' scale)
    scale = float(np.abs(rows).mean()) if len(rows) else 0.1
    fresh = generator.uniform(-scale, scale, size=(len(data.words) - 2 - len(rows), dim)).astype(np.float32)
    vectors = np.concatenate([np.zeros((2, dim), np.float32), rows, fresh])
    extra = {"ratios": torch.from_numpy(data.ngram_ratios)} if data.ngram_ratios is not None else {}
    return build_classifier(cfg.model, torch.from_numpy(vectors), cfg.freeze, **extra).to(cfg.device)


def accuracy_and_f1(model, data: Data, rows: np.ndarray, cfg: TrainConfig, buckets: int,
                    head=None) -> tuple[float, float]:
    """(accuracy, F1 of the positive class) on `rows`; leaves the model in training mode."""
    import torch

    model.eval()
    positive = []
    with torch.no_grad():
        for start in range(0, len(rows), 256):
            part = rows[start:start + 256]
            batch = TextBatch([data.ids[i] for i in part], data.labels[part], cfg.model, cfg.max_tokens, buckets,
                          cfg.device, data.frequent_ngrams)
            positive.append(torch.softmax(model(batch), dim=1)[:, 1].cpu().numpy())
    model.train()
    probability = np.concatenate(positive)
    if head is not None:
        probability = (probability + head.probability[rows]) / 2
    guess, truth = (probability > 0.5).astype(np.int64), data.labels[rows]
    tp = int(((guess == 1) & (truth == 1)).sum())
    precision = tp / max(int((guess == 1).sum()), 1)
    recall = tp / max(int((truth == 1).sum()), 1)
    return float((guess == truth).mean()), (2 * precision * recall / (precision + recall) if tp else 0.0)


class SentenceHead:
    """For short texts, a second view: a logistic regression on each text's sentence encoding
    (the packaged all-MiniLM-L6-v2), fitted once on the training split, whose probability is
    averaged with the word model's (in evaluation, early stopping and `simdex predict`). On
    Rotten Tomatoes' sentences the two views err on different texts (seed 0: 0.789 and 0.75
    alone, 0.798 together; seeds 0-4: 0.803 against 0.779). The word model takes the same steps
    as without it (only early stopping reads the average), so the vectors are fine-tuned as they
    would be; long texts (IMDB: median 202 tokens) gain nothing from it (0.76 alone) and would
    take minutes to encode, so `auto` uses it for texts of at most SHORT tokens (median)."""

    SHORT = 64  # median tokens per text
    L2 = 1e-4

    def __init__(self, weights, probability=None):
        self.weights, self.probability = weights, probability

    @classmethod
    def fit(cls, texts, data: "Data", cfg: TrainConfig, progress: Progress = SILENT) -> "SentenceHead":
        import torch

        from ..sentences.model import Encoder
        from .probe import fit_probe

        with progress.task("sentence head: encoding the texts", total=len(texts), unit="texts") as task:
            encodings = torch.from_numpy(encode_in_chunks(Encoder.load(device=cfg.device), list(texts), task))
        train = torch.from_numpy(data.train)
        weights = fit_probe(encodings[train], torch.from_numpy(data.labels[data.train]).float(), cls.L2)
        return cls(weights, cls._sigmoid(weights, encodings))

    def saved(self) -> dict:
        return {"weights": self.weights, "encoder": "packaged:all-MiniLM-L6-v2"}

    @classmethod
    def probabilities(cls, saved: dict, texts) -> np.ndarray:
        import torch

        from ..sentences.model import Encoder

        return cls._sigmoid(saved["weights"], torch.from_numpy(encode_in_chunks(Encoder.load(device="cpu"), texts)))

    @staticmethod
    def _sigmoid(weights, encodings) -> np.ndarray:
        from .probe import probe_scores

        return probe_scores(weights, encodings).sigmoid().numpy()


def encode_in_chunks(encoder, texts: list[str], task: Task = Task(), chunk: int = 8192) -> np.ndarray:
    """The encoder's unit vectors of `texts`, the task told of every chunk done."""
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    for start in range(0, len(texts), chunk):
        out[start:start + chunk], _ = encoder.encode(texts[start:start + chunk])
        task.update(min(start + chunk, len(texts)))
    return out


def _fine_tuned_matrix(store, model, data: Data) -> np.ndarray:
    """The parent's vectors, with the rows the data touched replaced by the trained ones."""
    vectors = np.array(store.matrix(), dtype=np.float32)
    trained = model.embedding.weight.detach().cpu().numpy()
    vectors[data.store_rows] = trained[2:2 + len(data.store_rows)]
    return vectors


class WordEncodings:
    """encode(words) for the polarity probe: the packaged sentence encoder's vectors of single
    words (bfloat16 where the CPU has it: about 1.4x as fast, cosine 0.99998 to float32), cached in
    STORE/train/ (float16, about 270 MB for the 346,000 words of GloVe 6B) so that the next run
    on the store skips the few minutes they take."""

    def __init__(self, store, device: str, progress: Progress = SILENT):
        self.directory, self.device, self.progress = store.training_directory(), device, progress

    def __call__(self, words: list[str]) -> np.ndarray:
        import hashlib

        import torch

        from ..files import file_sha256
        from ..sentences.model import Encoder, resolve_model

        folder = resolve_model(None)
        digest = hashlib.sha256("\n".join([file_sha256(folder.weights), *words]).encode()).hexdigest()[:16]
        path = self.directory / f"word-encodings-{digest}.npy"
        if path.is_file():
            try:
                cached = np.load(path)
                if cached.shape[0] == len(words):
                    return cached.astype(np.float32)
            except (OSError, ValueError):
                pass  # unreadable: encode again
        bf16 = self.device == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        encoder = Encoder.load(quantize="bf16" if bf16 else "none", device=self.device)
        encoder.short_in_float32 = 0  # single words: all short
        with self.progress.task("polarity probe: encoding the vocabulary's words (once per store)", total=len(words),
                                unit="words") as task:
            out = encode_in_chunks(encoder, words, task)
        self._cache(path, out)
        return out

    def _cache(self, path: Path, encodings: np.ndarray) -> None:
        """Keep them for the next run, if the disk lets us (the run does not need the cache)."""
        try:
            with atomic_write(path, sync=False) as tmp, open(tmp, "wb") as f:
                np.save(f, encodings.astype(np.float16))
            for stale in path.parent.glob("word-encodings-*.npy"):  # another vocabulary's (or model's)
                if stale != path:
                    stale.unlink(missing_ok=True)
        except (OSError, StoreFault):
            pass


def _write_version(store, parent, vectors, model, data, cfg, source, data_sha, result, polarity_report):
    from ..words.ingest import unit_rows

    unit, _ = unit_rows(vectors)
    trained = model.embedding.weight.detach().cpu().numpy()
    config = {"trained": asdict(cfg), "data": source, "data_sha256": data_sha, "parent": parent.version}
    metrics = {"val_accuracy": result.val_accuracy, "val_f1": result.val_f1, "epochs": result.epochs,
               "train_seconds": result.train_seconds, "polarity": polarity_report}
    with store.new_version(kind="words", dim=parent.dim, source=f"train sentiment {cfg.model} on {source}",
                           format="trained", parent=parent.version, config=config) as writer:
        start = 0
        for segment in store.segments():
            writer.revector(segment, unit[start:start + segment.count])
            start += segment.count
        if cfg.add_new_words and data.new_words:
            new_rows, norms = unit_rows(trained[2 + len(data.store_rows):])
            writer.append(new_rows, data.new_words, norms,
                          np.arange(parent.count + 1, parent.count + 1 + len(data.new_words)))
        return writer.commit(metrics=metrics)


def _save_checkpoint(path: Path, identity, model, stateful, epoch, best, best_state, best_epoch) -> None:
    import torch

    with atomic_write(path, sync=False) as tmp:
        torch.save({**identity, "model": model.state_dict(), "optimizer": [o.state_dict() for o in stateful],
                    "epoch": epoch, "best": best, "best_state": best_state, "best_epoch": best_epoch,
                    "torch_rng": torch.get_rng_state()}, tmp)


def _resume(path: Path, identity, model, stateful):
    import torch

    if not path.exists():
        raise SimdexError(f"{path}: no checkpoint to resume from (train without --resume)")
    checkpoint = torch.load(path, weights_only=False)
    for key in ("config", "data", "parent"):
        if checkpoint.get(key) != identity[key]:
            raise SimdexError(f"{path}: the checkpoint is for other {key} settings; train without --resume to "
                              f"start again")
    model.load_state_dict(checkpoint["model"])
    for thing, state in zip(stateful, checkpoint["optimizer"]):  # optimizers and their schedules
        thing.load_state_dict(state)
    torch.set_rng_state(checkpoint["torch_rng"])  # dropout continues as it would have
    return checkpoint["epoch"], checkpoint["best"], checkpoint["best_state"], checkpoint["best_epoch"]


def _save_classifier(store, version: int, classifier: dict) -> None:
    import torch

    with atomic_write(store.classifier_path(version, for_writing=True)) as tmp:
        torch.save(classifier, tmp)

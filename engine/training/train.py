"""`simdex train sentiment`: fine-tune a store's embeddings through a sentiment task, then re-index.

    result = train_sentiment(store, dataset="imdb")     # a new version, current, re-indexed, with its report

The product is the embeddings; the classifier is how they learn. By the store's kind:

- a word store: a classifier over the store's word vectors (words.py: the tutorial's bag, BiLSTM
  or CNN), the vectors fine-tuned at their own rate and tied to where they started; then the
  polarity step (polarity.py); the trained rows become a new version;
- a sentence store: its BERT encoder fine-tuned with a linear head (encoder.py), three runs
  averaged into one model (soup.py), kept in the store as a model folder; every text of the
  store re-encoded with it into a new version, which records the new model, so that `search`
  encodes queries with it and `simdex use` goes back to the old model and vectors together.

Both go through one loop (loop.py) with a seeded, stratified validation split, early stopping
on the validation accuracy of the model whose embeddings are trained, and a checkpoint after
every epoch that `resume=True` continues from (checked before anything expensive). Then one
place writes the version (versions.py), the report says what moved (report.py), the index
follows the new version (indexes/follow.py), and the classifier is kept for `simdex predict`
(predict.py). A frozen run (`freeze`) trains the classifier alone and writes no version. Nothing
becomes current before the version's commit: a failure or an interrupt leaves the store as it was.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..backends.local import LocalStore, local_store
from ..devices import pick_device
from ..errors import WrongKind
from ..progress import SILENT, Progress
from .config import EncoderTrainConfig, TrainConfig
from .labelled import held_out, read_labelled
from .loop import check_resumable, fit
from .predict import save_classifier
from .scores import accuracy_and_f1
from .soup import clear, fit_soup


@dataclass
class TrainResult:
    version: int | None         # the version written, or None (frozen, random init)
    parent: int
    model: str                  # bag | bilstm | cnn, or the encoder fine-tuned (sentence stores)
    val_accuracy: float         # the model whose embeddings are trained (or the frozen baseline, with freeze)
    val_f1: float
    train_seconds: float
    epochs: int
    best_epoch: int | None      # None for a soup (each member has its own: soup_members)
    train_examples: int
    val_examples: int
    freeze: bool
    data: str
    kind: str = "words"         # the store's kind
    vocabulary: int | None = None   # word stores: words in the embedding layer
    new_words: int | None = None    # of them not in the store (added with add_new_words)
    added_new_words: bool = False
    ngrams: bool = False        # the bag had the n-gram features beside the vectors
    polarity: bool = False      # the polarity step ran (its figures: report["polarity_step"])
    sentence_head_accuracy: float | None = None  # --sentence-head: its own accuracy...
    blended_accuracy: float | None = None        # ...and its average with the word model's
    frozen_accuracy: float | None = None  # sentence stores: the baseline (a head on the fixed encodings)
    frozen_f1: float | None = None
    encoder: str | None = None  # sentence stores: the fine-tuned model the new version records
    note: str = ""
    report: dict = field(default_factory=dict)
    index: object = None  # what became of the store's index (indexes.follow.IndexFollow), if it has one
    step_seconds: float | None = None  # of train_seconds, in training steps (sentence stores; benchmarks)
    soup_members: list | None = None   # sentence stores with soup > 1: each run averaged into the model

    JSON_FIELDS = ("version", "parent", "kind", "model", "val_accuracy", "val_f1", "train_seconds", "epochs",
                   "best_epoch", "train_examples", "val_examples", "freeze", "data", "vocabulary", "new_words",
                   "added_new_words", "ngrams", "polarity", "sentence_head_accuracy", "blended_accuracy",
                   "frozen_accuracy", "frozen_f1", "encoder", "soup_members", "note", "report")


def train_sentiment(store, data_path: str | None = None, *, dataset: str | None = None, text_column: str = "text",
                    label_column: str = "label", config: TrainConfig | EncoderTrainConfig | None = None,
                    resume: bool = False, progress: Progress = SILENT) -> TrainResult:
    """Train on labelled texts and write the fine-tuned embeddings as a new version (see the
    module's notes). `config`: a TrainConfig (word stores) or an EncoderTrainConfig (sentence
    stores); None: the store's kind's defaults."""
    import torch

    store = local_store(store, "sentiment training")
    parent = store.version
    config = config or (TrainConfig() if parent.kind == "words" else EncoderTrainConfig())
    wanted = "words" if isinstance(config, TrainConfig) else "sentences"
    if wanted != parent.kind:
        raise WrongKind(f"{store.location}: these settings are for a {wanted} store; this store holds {parent.kind}")
    cfg = replace(config.check(), device=pick_device(config.device))
    texts, labels, names, source, data_sha = read_labelled(data_path, dataset=dataset, text_column=text_column,
                                                           label_column=label_column)
    checkpoint = store.training_directory() / "checkpoint.pt"  # (a killed run's half-written one is removed)
    identity = {"config": asdict(cfg), "data": data_sha, "parent": parent.number}
    if resume:
        check_resumable(checkpoint, identity)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    run = dict(store=store, parent=parent, texts=texts, labels=labels, names=names, source=source, data_sha=data_sha,
               cfg=cfg, checkpoint=checkpoint, identity=identity, resume=resume, progress=progress)
    result = _train_words(**run) if parent.kind == "words" else _train_encoder(**run)
    clear(checkpoint)
    if result.version is not None:
        from ...indexes.follow import keep_in_step

        result.index = keep_in_step(store, progress)
    return result


def _train_words(store: LocalStore, parent, texts, labels, names, source, data_sha, cfg: TrainConfig, checkpoint,
                 identity, resume, progress) -> TrainResult:
    from .polarity import WordEncodings, polarity_coordinate, word_polarities
    from .report import word_report
    from .versions import write_word_version
    from .words import WordData, WordTrainee

    data = WordData(texts, labels, store, cfg)
    trainee = WordTrainee(data, cfg, store)
    fitted = fit(trainee, data.labels, data.train, data.val, epochs=cfg.epochs, patience=cfg.patience, seed=cfg.seed,
                 checkpoint=checkpoint, identity=identity, resume=resume, progress=progress)
    fine_tuning = not cfg.freeze and cfg.init == "store"
    result = TrainResult(None, parent.number, cfg.model, fitted.accuracy, fitted.f1, fitted.seconds,
                         fitted.epochs_run, fitted.best_epoch, len(data.train), len(data.val), cfg.freeze, source,
                         vocabulary=len(data.words) - 2, new_words=len(data.new_words),
                         added_new_words=bool(fine_tuning and cfg.add_new_words and data.new_words),
                         ngrams=cfg.ngrams)
    if cfg.sentence_head:
        from .sentence_head import sentence_head_scores

        extra = sentence_head_scores(texts, labels, data.train, data.val, trainee.probabilities(data.val), cfg.device,
                                     progress)
        result.sentence_head_accuracy, result.blended_accuracy = extra["sentence_head_accuracy"], \
            extra["blended_accuracy"]
    classifier = {**trainee.saved(), "labels": names, "config": asdict(cfg), "val_accuracy": fitted.accuracy,
                  "data": source}
    if not fine_tuning:
        result.note = (f"frozen: the word vectors did not change, so no new version was written; the classifier "
                       f"is kept for version {parent.number}" if cfg.init == "store" else
                       f"random init: custom {trainee.model.embedding.weight.shape[1]}-d embeddings, trained for "
                       f"the classifier (kept for version {parent.number}) but not written into the store")
        save_classifier(store, parent.number, classifier)
        return result

    trained = trainee.trained_rows()
    unit = np.array(store.matrix(), dtype=np.float32)
    unit[data.store_rows] = trained[:len(data.store_rows)]
    unit = _normalised(unit)
    stages = {"trained": unit}
    polarity_report = {}
    if cfg.polarity:
        polarities = word_polarities(data.tokens, data.labels, data.train)
        stages["polarity"], polarity_report = polarity_coordinate(unit, store.keys(), polarities,
                                                                  WordEncodings(store, cfg.device, progress),
                                                                  strength=cfg.polarity_strength, seed=cfg.seed)
        result.polarity = "note" not in polarity_report
    training_words = {word for i in data.train for word in data.tokens[i]}
    report = {**word_report(store, stages, training_words), "polarity_step": polarity_report}
    metrics = {"val_accuracy": fitted.accuracy, "val_f1": fitted.f1, "epochs": fitted.epochs_run,
               "train_seconds": fitted.seconds, **report}
    version = write_word_version(store, parent, list(stages.values())[-1], source=f"train sentiment {cfg.model} on "
                                 f"{source}", config={"trained": asdict(cfg), "data": source, "data_sha256": data_sha,
                                                      "parent": parent.number,  # a fastText parent's subwords:
                                                      "subwords": parent.config.get("subwords")},  # kept as they were
                                 metrics=metrics,
                                 new_rows=trained[len(data.store_rows):] if result.added_new_words else None,
                                 new_words=data.new_words if result.added_new_words else ())
    save_classifier(store, version.number, classifier)
    result.version, result.report = version.number, report
    return result


def _train_encoder(store: LocalStore, parent, texts, labels, names, source, data_sha, cfg: EncoderTrainConfig,
                   checkpoint, identity, resume, progress) -> TrainResult:
    from ..sentences.model import Encoder, resolve_model
    from .encoder import EncoderTrainee, frozen_head, two_class_head
    from .report import sentence_report
    from .versions import keep_encoder, write_sentence_version

    val_mask = held_out(labels, cfg.val_split, cfg.seed)
    train, val = np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
    old = store.encoder()
    # every labelled text with the store's encoder: the frozen baseline, and the neighbours before
    before = _encodings(store, store.matrix(), texts, old, progress, "encoding the texts (the store's encoder)")
    weights, frozen_p = frozen_head(before, labels, train)
    frozen_accuracy, frozen_f1 = accuracy_and_f1(frozen_p[val], labels[val])
    head = two_class_head(weights.numpy())
    result = TrainResult(None, parent.number, old.folder.label, frozen_accuracy, frozen_f1, 0.0, 0, 0, len(train),
                         len(val), cfg.freeze, source, kind="sentences", frozen_accuracy=round(frozen_accuracy, 6),
                         frozen_f1=round(frozen_f1, 6))
    if cfg.freeze:
        import torch

        result.note = (f"frozen: a head on the fixed encodings, no new version; the classifier is kept for version "
                       f"{parent.number}")
        save_classifier(store, parent.number, {"kind": "encoder", "labels": names, "config": asdict(cfg),
                                               "head": {k: torch.as_tensor(v) for k, v in head.items()},
                                               "val_accuracy": frozen_accuracy, "data": source})
        return result

    trainee, fitted = fit_soup(lambda: EncoderTrainee(old.folder, old.pooling, texts, labels, cfg, cfg.device,
                                                      old.max_length), labels, train, val, members=cfg.soup,
                               seed=cfg.seed, epochs=cfg.epochs, patience=cfg.patience, checkpoint=checkpoint,
                               identity=identity, resume=resume, progress=progress)
    label = keep_encoder(store, trainee)
    encoder = Encoder(resolve_model(label, store), old.pooling, old.max_length,
                      old.quantize if old.quantize != "int8" else "none", cfg.device)
    config = {**encoder.settings(), "trained": asdict(cfg), "data": source, "data_sha256": data_sha,
              "parent": parent.number}
    if parent.config.get("fields"):
        config["fields"] = parent.config["fields"]  # the texts keep their fields (the same rows)
    members = [{"val_accuracy": m.accuracy, "val_f1": m.f1, "best_epoch": m.best_epoch, "epochs": m.epochs_run}
               for m in fitted.members] if cfg.soup > 1 else None
    metrics = {"val_accuracy": fitted.accuracy, "val_f1": fitted.f1, "frozen_accuracy": frozen_accuracy,
               "epochs": fitted.epochs_run, "train_seconds": fitted.seconds, "step_seconds": fitted.step_seconds,
               "soup_members": members}
    old_rows = store.matrix()  # the parent's, still readable after the new version is current
    version, unit = write_sentence_version(store, parent, encoder, source=f"train sentiment on {source}",
                                           config=config, metrics=metrics, progress=progress)
    after = _encodings(store, unit, texts, encoder, progress, "encoding the texts (the fine-tuned encoder)")
    moved = float((np.asarray(old_rows) * unit).sum(axis=1).mean())
    report = {"accuracy": {"fine_tuned": {"accuracy": round(fitted.accuracy, 6), "f1": round(fitted.f1, 6)},
                           "frozen": {"accuracy": round(frozen_accuracy, 6), "f1": round(frozen_f1, 6)}},
              **sentence_report(texts, labels, train, val, before, after, moved=moved, seed=cfg.seed)}
    store.set_metrics(version.number, {**metrics, **report})
    save_classifier(store, version.number, {"kind": "encoder", "labels": names, "config": asdict(cfg),
                                            "head": trainee.head_state(), "val_accuracy": fitted.accuracy,
                                            "data": source})
    if old.quantize == "int8":
        result.note = "the parent's int8 model was left behind: the fine-tuned version runs in float32"
    result.version, result.report, result.encoder = version.number, report, label
    result.model = old.folder.label
    result.val_accuracy, result.val_f1 = fitted.accuracy, fitted.f1
    result.train_seconds, result.epochs, result.step_seconds = fitted.seconds, fitted.epochs_run, fitted.step_seconds
    result.best_epoch = None if members else fitted.members[0].best_epoch
    result.soup_members = members
    return result


def _encodings(store, matrix, texts, encoder, progress, label) -> np.ndarray:
    """Unit encodings of `texts`: the store's row for a text it holds (`matrix`: its vectors by row),
    the encoder's for the others."""
    key_to_id = store.key_to_id()
    rows = [key_to_id.get(text.strip()) for text in texts]
    missing = [i for i, row in enumerate(rows) if row is None]
    out = np.empty((len(texts), store.version.dim), dtype=np.float32)
    stored = [i for i, row in enumerate(rows) if row is not None]
    if stored:
        out[stored] = np.asarray(matrix[np.array([rows[i] for i in stored])])
    if missing:
        with progress.task(label, total=len(missing), unit="texts") as task:
            out[missing] = encoder.encode_all([texts[i] for i in missing], task)
    return out


def _normalised(unit: np.ndarray) -> np.ndarray:
    from ..words.ingest import unit_rows

    return unit_rows(unit)[0]

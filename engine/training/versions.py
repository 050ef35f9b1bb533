"""Writing what a trainer trained: the one place a trained version is written. A trainer returns
what it trained (rows, a fine-tuned encoder) and never writes storage itself.

    write_word_version(store, parent, unit, new_words=..., config=..., metrics=...)
    folder = keep_encoder(store, trainee)                 # store:models/encoder-<hash>
    version, moved = write_sentence_version(store, parent, encoder, config=..., metrics=...)

Both write the new vectors as segments that share their parent's vocabulary rows (keys, norms,
ranks; for sentences, hashes and external ids), so nothing but the vectors is copied, and the
version becomes current when it commits: an interruption before leaves the parent current.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from ..backends.local import LocalStore
from ..files import file_sha256, temporary_path
from ..progress import SILENT, Progress
from ..sentences.model import STORE_MODEL
from ..store import Version
from ..words.ingest import unit_rows


def write_word_version(store: LocalStore, parent: Version, unit: np.ndarray, *, source: str, config: dict,
                       metrics: dict, new_rows: np.ndarray | None = None, new_words=()) -> Version:
    """`unit`: the parent's rows, trained (unit length, the parent's row order); `new_words` join
    after them with `new_rows` (as trained, normalised here)."""
    with store.new_version(kind="words", dim=parent.dim, source=source, format="trained", parent=parent.number,
                           config=config) as writer:
        start = 0
        for segment in store.segments():
            writer.revector(segment, unit[start:start + segment.count])
            start += segment.count
        if len(new_words):
            rows, norms = unit_rows(new_rows)
            writer.append(rows, list(new_words), norms, np.arange(parent.count + 1, parent.count + 1 + len(new_words)))
        return writer.commit(metrics=metrics)


def keep_encoder(store: LocalStore, trainee) -> str:
    """Save a fine-tuned encoder into the store's models folder; its label for a version's config."""
    directory = store.models_directory()
    tmp = temporary_path(directory, "encoder")
    try:
        tmp.mkdir()
        trainee.save(tmp)
        final = directory / f"encoder-{file_sha256(tmp / 'model.safetensors')[:16]}"
        if final.exists():  # the very same weights, kept before
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return f"{STORE_MODEL}{final.relative_to(store.path)}"


def write_sentence_version(store: LocalStore, parent: Version, encoder, *, source: str, config: dict, metrics: dict,
                           progress: Progress = SILENT) -> tuple[Version, np.ndarray]:
    """Every text of the parent re-encoded with `encoder` into a new version; (the version, the
    new unit rows, in the parent's row order)."""
    texts = store.keys()
    with progress.task("re-encoding the store's texts", total=len(texts), unit="texts") as task:
        unit = encoder.encode_all(texts, task)
    with store.new_version(kind="sentences", dim=parent.dim, source=source, format="sentences",
                           parent=parent.number, config=config) as writer:
        start = 0
        for segment in store.segments():
            writer.revector(segment, unit[start:start + segment.count])
            start += segment.count
        return writer.commit(metrics=metrics), unit

"""simdex's data side: the store and its backends, words, sentences, training.

    from simdex import Store
    store = Store.open(path)                # a path, a bare name ("default", "reviews") or an address
    store.analogy("man", "king", "woman")   # [("queen", 0.86...)]

    store.py       the contract every store answers        backends/   local (SQLite + safetensors), Milvus
    query.py       exact search, expressions, analogies    words/      vector files in and out, evaluation
    errors.py      what a user can cause or meet           sentences/  texts, the encoder, int8
    progress.py    progress of long work                   training/   the sentiment trainer and its report
"""

from .backends.local import LocalStore
from .backends.milvus import MilvusStore
from .errors import (BadEvalFile, BadIndex, BadInput, BadModel, BadOption, BadQuery, BadVectorFile, DamagedStore,
                     EmptyStore, SimdexError, StoreBusy, StoreFault, StoreNotFound, StoreReadOnly, UnknownVersion,
                     UnknownWord, WrongKind)
from .store import Store, Version, data_dir, default_store_path

__all__ = ["Store", "LocalStore", "MilvusStore", "Version", "data_dir", "default_store_path", "SimdexError",
           "StoreNotFound", "EmptyStore", "UnknownVersion", "UnknownWord", "BadVectorFile", "BadInput", "BadQuery",
           "BadOption", "BadIndex", "BadModel", "BadEvalFile", "StoreBusy", "StoreFault", "StoreReadOnly",
           "DamagedStore", "WrongKind"]

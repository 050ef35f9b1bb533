"""simdex's data side: the store, ingestion, exact queries, evaluation.

    from simdex import Store
    store = Store.open(path)                # a path, or a bare name ("default", "reviews")
    store.analogy("man", "king", "woman")   # [("queen", 0.86...)]
"""

from .errors import (BadEvalFile, BadIndex, BadInput, BadModel, BadOption, BadQuery, BadVectorFile, DamagedStore,
                     EmptyStore, SimdexError, StoreBusy, StoreFault, StoreNotFound, StoreReadOnly, UnknownVersion,
                     UnknownWord, WrongKind)
from .store import Store, Version, data_dir, default_store_path
from .backends.local import LocalStore
from .backends.milvus import MilvusStore

__all__ = ["Store", "LocalStore", "MilvusStore", "Version", "data_dir", "default_store_path", "SimdexError", "StoreNotFound", "EmptyStore",
           "UnknownVersion", "UnknownWord", "BadVectorFile", "BadInput", "BadQuery", "BadOption", "BadIndex",
           "BadModel", "BadEvalFile", "StoreBusy", "StoreFault", "StoreReadOnly", "DamagedStore", "WrongKind"]

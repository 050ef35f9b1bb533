"""simdex's data side: the store, ingestion, exact queries, evaluation.

    from engine import Store
    store = Store.open(path)
    store.analogy("man", "king", "woman")   # [("queen", 0.86...)]
"""

from .errors import (BadEvalFile, BadQuery, BadVectorFile, DamagedStore, EmptyStore, SimdexError, StoreBusy,
                     StoreNotFound, UnknownVersion, UnknownWord)
from .store import Store, Version, default_store_path

__all__ = ["Store", "Version", "default_store_path", "SimdexError", "StoreNotFound", "EmptyStore",
           "UnknownVersion", "UnknownWord", "BadVectorFile", "BadQuery", "BadEvalFile", "StoreBusy",
           "DamagedStore"]

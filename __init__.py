"""simdex: vector search and similarity for word and sentence embeddings.

    from simdex import Store
    store = Store.open("default")              # a path, a bare name, or a Milvus address
    store.analogy("man", "king", "woman")      # [("queen", 0.85...)]

The repository root is this package: `engine/` (the data side), `indexes/` (the search side),
`cli.py` and `web/` (the two faces) install as `simdex.engine`, `simdex.indexes`, `simdex.cli`
and `simdex.web`, so that `simdex` is the only top-level name simdex puts into an environment.
"""

from .engine import *  # noqa: F401,F403  (the public API: Store and the named errors)
from .engine import __all__  # noqa: F401

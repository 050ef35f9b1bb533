"""simdex's search side: FAISS indexes over a store version (building, tuning, persistence)."""


def index_state(store):
    """The index record `simdex info` shows for the store's current version, or None."""
    return None

"""`simdex serve`: the HTTP face of a store (web/app.py) and its explorer page (web/static/)."""

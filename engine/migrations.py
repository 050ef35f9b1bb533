"""The store's schema, as append-only migrations. Never edit one that has shipped: add the next.

`PRAGMA user_version` holds the number applied, so opening a store for a query can see that it
is up to date without importing sqlite-utils (which costs a quarter of a second).
"""

from __future__ import annotations

import sqlite3

def m001_create_versions_and_vocab(db):
    # One row per version of the store's vectors. `kind` is "words" or "sentences"; `parent` is
    # the version a trained or derived version came from; config and metrics are JSON.
    db.execute(
        """
        CREATE TABLE versions (
            version INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            source TEXT,
            sha256 TEXT,
            format TEXT,
            count INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            parent INTEGER REFERENCES versions(version),
            created TEXT NOT NULL,
            file TEXT NOT NULL,
            config TEXT NOT NULL DEFAULT '{}',
            metrics TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    # One row per matrix row: id is the row, key the word (or sentence text), norm the vector's
    # length before normalisation, rank its position among the source's vectors (1 = first).
    # Each version also gets a partial index `vocab_key_vN ON vocab(key) WHERE version = N`,
    # built after its rows are in (much faster than maintaining one index during the insert).
    db.execute(
        """
        CREATE TABLE vocab (
            version INTEGER NOT NULL,
            id INTEGER NOT NULL,
            key TEXT NOT NULL,
            norm REAL NOT NULL,
            rank INTEGER NOT NULL,
            PRIMARY KEY (version, id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")


def m002_create_indexes(db):
    # ANN indexes built over a version (see indexes/). `path` is relative to the store.
    db.execute(
        """
        CREATE TABLE indexes (
            id INTEGER PRIMARY KEY,
            version INTEGER NOT NULL REFERENCES versions(version),
            kind TEXT NOT NULL,
            factory TEXT NOT NULL,
            path TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            recall_at_10 REAL,
            seconds REAL,
            bytes INTEGER,
            created TEXT NOT NULL
        )
        """
    )


ALL = [m001_create_versions_and_vocab, m002_create_indexes]


def up_to_date(conn: sqlite3.Connection) -> bool:
    return conn.execute("PRAGMA user_version").fetchone()[0] >= len(ALL)


def apply(conn: sqlite3.Connection) -> None:
    """Apply the pending migrations through sqlite-utils' Migrations, then record the count."""
    import sqlite_utils
    from sqlite_utils.migrations import Migrations

    db = sqlite_utils.Database(conn)
    migration_set = Migrations("simdex")
    for fn in ALL:
        migration_set()(fn)
    migration_set.apply(db)
    conn.execute(f"PRAGMA user_version = {len(ALL)}")

"""The store's schema, as append-only migrations. Never edit one that has shipped: add the next.

`PRAGMA user_version` holds the number applied, so opening a store for a query can see that it
is up to date without importing sqlite-utils (which costs a quarter of a second).
"""

from __future__ import annotations

import sqlite3
import sys

from . import postings

LONG_UPGRADE_TEXTS = 200_000  # a migration over more texts than this says it is running


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


def m003_segments(db):
    # A version is a list of immutable segments: matrix files whose rows are concatenated in
    # order. Adding rows (new sentences) makes a version that reuses its parent's segments and
    # adds one, so nothing is rewritten; fine-tuned vectors make a segment that shares the keys
    # of an existing one (`keys`: the segment whose vocab rows name these rows).
    db.execute(
        """
        CREATE TABLE segments (
            id INTEGER PRIMARY KEY,
            file TEXT NOT NULL,
            count INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            keys INTEGER NOT NULL REFERENCES segments(id),
            created TEXT NOT NULL
        )
        """
    )
    # `start` is the version's row id of the segment's first row.
    db.execute(
        """
        CREATE TABLE version_segments (
            version INTEGER NOT NULL REFERENCES versions(version),
            position INTEGER NOT NULL,
            segment INTEGER NOT NULL REFERENCES segments(id),
            start INTEGER NOT NULL,
            PRIMARY KEY (version, position)
        )
        """
    )
    # The vocabulary now belongs to segments: one row per matrix row of a segment with its own
    # keys. `hash` (16 bytes of the text's sha256) and `external_id` serve sentence stores.
    # Each keys segment gets partial indexes built after its rows are in:
    # `vocab_key_sN ON vocab(key) WHERE segment = N` (words) or `vocab_hash_sN` (sentences).
    db.execute(
        """
        CREATE TABLE vocab_segments (
            segment INTEGER NOT NULL,
            row INTEGER NOT NULL,
            key TEXT NOT NULL,
            norm REAL NOT NULL,
            rank INTEGER NOT NULL,
            hash BLOB,
            external_id TEXT,
            PRIMARY KEY (segment, row)
        ) WITHOUT ROWID
        """
    )
    # Existing versions become one segment each, numbered like the version.
    db.execute("INSERT INTO segments (id, file, count, dim, keys, created)"
               " SELECT version, file, count, dim, version, created FROM versions")
    db.execute("INSERT INTO version_segments SELECT version, 0, version, 0 FROM versions")
    db.execute("INSERT INTO vocab_segments SELECT version, id, key, norm, rank, NULL, NULL FROM vocab")
    db.execute("DROP TABLE vocab")
    db.execute("ALTER TABLE vocab_segments RENAME TO vocab")
    for (number,) in db.execute("SELECT id FROM segments").fetchall():
        db.execute(f"CREATE UNIQUE INDEX vocab_key_s{number} ON vocab(key) WHERE segment = {number}")
    # the version's file is now its segments'
    db["versions"].transform(drop={"file"})


def m004_staged_segments(db):
    # Segments an encode has committed but not yet put into a version: a long encode commits
    # its rows as it goes, so that an interrupted run resumes from them. `job` names the
    # parent version and the encoder settings they were made for.
    db.execute(
        """
        CREATE TABLE staged (
            segment INTEGER PRIMARY KEY REFERENCES segments(id),
            job TEXT NOT NULL,
            created TEXT NOT NULL
        )
        """
    )


def m005_fields_and_text_index(db):
    # The fields a sentence store keeps with each text (`encode --fields source,label`): a row per
    # text of a keys segment, a column f_NAME per field, added when the store first keeps it.
    db.execute(
        """
        CREATE TABLE fields (
            segment INTEGER NOT NULL,
            row INTEGER NOT NULL,
            PRIMARY KEY (segment, row)
        ) WITHOUT ROWID
        """
    )
    # A full-text index of the stored texts (FTS5, ranked by BM25), contentless (the texts are in
    # vocab): rowid = segment * 2^32 + row, so a version reads the rowid ranges of its segments.
    db.execute("CREATE VIRTUAL TABLE texts USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE texts_terms USING fts5vocab(texts, 'row')")
    db.execute("INSERT INTO texts(rowid, text) SELECT segment * 4294967296 + row, key FROM vocab "
               "WHERE hash IS NOT NULL")


def m006_text_postings(db):
    # BM25's numbers beside the full-text index (postings.py): per term and segment the rows
    # holding it and how often, per segment each row's token count; written for the sentence
    # segments already there.
    db.execute("CREATE TABLE text_postings (term TEXT NOT NULL, segment INTEGER NOT NULL, rows BLOB NOT NULL, "
               "tfs BLOB NOT NULL, PRIMARY KEY (term, segment)) WITHOUT ROWID")
    db.execute("CREATE TABLE text_lengths (segment INTEGER PRIMARY KEY, count INTEGER NOT NULL, "
               "tokens INTEGER NOT NULL, lengths BLOB NOT NULL)")
    texts = db.execute("SELECT count(*) FROM vocab WHERE hash IS NOT NULL").fetchone()[0]
    if texts >= LONG_UPGRADE_TEXTS:  # half a minute or more: say what the wait is
        print(f"simdex: upgrading the store for fast keyword search: BM25 postings of {texts:,} texts "
              f"(once; about 25 s a million)", file=sys.stderr, flush=True)
    for (segment,) in db.execute("SELECT DISTINCT segment FROM vocab WHERE hash IS NOT NULL").fetchall():
        write_postings(db.conn, segment)


def write_postings(conn: sqlite3.Connection, segment: int) -> None:
    """Write the BM25 postings and lengths of a segment's texts (postings.py), read from FTS5's
    own tokens: a temporary FTS5 table holding only them, and its fts5vocab `instance` table.
    Here because m006 writes them for the segments it finds; the local store then writes them
    for each segment whose texts join the full-text index."""
    segment = int(segment)
    count = conn.execute("SELECT coalesce(max(row) + 1, 0) FROM vocab WHERE segment = ?", (segment,)).fetchone()[0]
    conn.execute(f"CREATE VIRTUAL TABLE temp.segment_texts USING fts5(text, content='', "
                 f"tokenize='{postings.TOKENIZER}')")
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.segment_tokens USING fts5vocab(temp, segment_texts, instance)")
        conn.execute("INSERT INTO temp.segment_texts(rowid, text) SELECT row, key FROM vocab "
                     "WHERE segment = ? AND hash IS NOT NULL", (segment,))
        # fts5vocab yields the instances in term, then row order: GROUP BY term streams them
        records, lengths = postings.segment_postings(
            conn.execute("SELECT term, group_concat(doc) FROM temp.segment_tokens GROUP BY term").fetchall(), count)
        conn.executemany(f"INSERT INTO text_postings VALUES (?, {segment}, ?, ?)", records)
        conn.execute("INSERT INTO text_lengths VALUES (?, ?, ?, ?)",
                     (segment, count, int(lengths.sum()), postings.lengths_blob(lengths)))
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.segment_tokens")
        conn.execute("DROP TABLE IF EXISTS temp.segment_texts")


ALL = [m001_create_versions_and_vocab, m002_create_indexes, m003_segments, m004_staged_segments,
       m005_fields_and_text_index, m006_text_postings]


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

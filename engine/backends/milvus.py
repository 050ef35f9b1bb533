"""A store that lives in Milvus: the same Store interface as engine/local.py, for stores that
outgrow one machine.

    milvus://HOST:19530/NAME        a Milvus standalone or cluster (token: SIMDEX_MILVUS_TOKEN)
    milvus-lite://PATH.db/NAME      milvus-lite, in-process, over one local file

Layout, all in Milvus so that every client of the cluster sees the same store:

    simdex_NAME_versions    one row per version: its record (kind, count, dim, source, parent,
                            config with the index's tuned parameters, metrics) as JSON
    simdex_NAME_vN          version N: row (primary key, the row number), key, norm (the
                            original length), rank, external_id, vector (unit length)
    simdex_NAME             an alias: the current version's collection

A version is written into its own collection, indexed (HNSW, inner product), loaded and tuned to
a recall target; only then is its record inserted and the alias switched, in one call. Readers
never see half a version, and a failed or interrupted write drops the unfinished collection.

Queries go through Milvus's index (over-fetched and re-ranked exactly from the stored vectors,
as the local HNSW path does); `exact` reads the version's vectors into this process once and
searches them with numpy. Index parameters are sent as a JSON `params` entry and read back with
describe_index: pymilvus 3 with milvus-lite silently drops them otherwise.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from .. import query
from ..errors import BadOption, MilvusFault, SimdexError, StoreNotFound, UnknownVersion
from ..store import Store, Version
from .milvus_writer import FIELD_COLUMN, MISSING_COLUMN

TOKEN_VARIABLE = "SIMDEX_MILVUS_TOKEN"
REQUEST_VARIABLE = "SIMDEX_MILVUS_REQUEST_MB"   # bytes per request, for servers set below the 64 MB default
QUERY_ROWS = 16_384         # rows per query / iterator batch (Milvus caps a query's limit)
EXACT_HEAD = 50_000         # --restrict N up to this: exact search over the first N rows
_ADDRESS = re.compile(r"^(milvus|milvus-lite)://(.+)/([A-Za-z_][A-Za-z0-9_]*)$")


def parse_address(location: str) -> tuple[str, str, str | None, str]:
    """(uri for MilvusClient, store name, token, the address as given)."""
    match = _ADDRESS.match(location.rstrip("/"))
    if match is None:
        raise BadOption(f"{location}: a Milvus address is milvus://HOST:PORT/NAME or milvus-lite://PATH.db/NAME "
                        f"(NAME: letters, digits and _)")
    scheme, where, name = match.groups()
    if scheme == "milvus":
        uri = where if where.startswith(("http://", "https://")) else f"http://{where}"
        return uri, name, os.environ.get(TOKEN_VARIABLE) or None, location
    return os.path.abspath(where), name, None, location


class MilvusStore(Store):
    def __init__(self, location: str, client, name: str, version: int | None = None):
        self._location, self.client, self.name = location, client, name
        self._pinned = version
        self._version: Version | None = None
        self._keys = self._key_to_id = self._matrix = None
        self._searcher = None
        self._loaded: set[str] = set()
        self._head = self._norms = self._ranks = None

    @property
    def location(self) -> str:
        return self._location

    # -- opening -------------------------------------------------------------------------------------

    @classmethod
    def connect(cls, location: str):
        uri, name, token, _ = parse_address(str(location))
        import logging

        # gRPC's own log lines (a server's keepalive GOAWAY while we compute) would reach the user
        # beside our one Error line; its failures reach us as exceptions either way
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        from pymilvus import MilvusClient

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its failures reach the user as one Error line

        try:
            client = MilvusClient(uri=uri, token=token or "", timeout=10)
        except Exception as e:
            if _listening(uri):  # the server answers but refused us: the token, not the network
                raise MilvusFault(f"{location}: Milvus refused the connection: wrong or missing token "
                                  f"(set {TOKEN_VARIABLE} to USER:PASSWORD or an API key; {_reason(e)})") from None
            raise MilvusFault(f"{location}: cannot connect to Milvus ({_reason(e)})") from None
        return client, name

    @classmethod
    def open(cls, location, version: int | None = None, read_only: bool = False) -> "MilvusStore":
        client, name = cls.connect(location)
        store = cls(str(location), client, name, version)
        if not store.call(client.has_collection, store.meta):
            raise StoreNotFound(location, "no simdex store at this Milvus address")
        if version is not None:
            store.get_version(version)
        return store

    @classmethod
    def create(cls, location) -> "MilvusStore":
        client, name = cls.connect(location)
        store = cls(str(location), client, name)
        if not store.call(client.has_collection, store.meta):
            from pymilvus import DataType, MilvusClient

            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("version", DataType.INT64, is_primary=True)
            schema.add_field("record", DataType.VARCHAR, max_length=65_535)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants one; unused
            index = client.prepare_index_params()
            index.add_index(field_name="vector", index_type="FLAT", metric_type="L2")
            store.call(client.create_collection, store.meta, schema=schema, index_params=index)
        return store

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass

    @staticmethod
    def request_bytes() -> int:
        """The bytes one request to this server may carry (the writer batches its inserts by it)."""
        return request_bytes()

    @property
    def meta(self) -> str:
        return f"simdex_{self.name}_versions"

    @property
    def alias(self) -> str:
        return f"simdex_{self.name}"

    def collection(self, number: int) -> str:
        return f"simdex_{self.name}_v{number}"

    def call(self, action, *args, **kwargs):
        """A Milvus call; its failures become one MilvusFault naming the address."""
        try:
            return action(*args, **kwargs)
        except SimdexError:
            raise
        except Exception as e:
            raise MilvusFault(f"{self.location}: {_reason(e)}") from None

    # -- versions ------------------------------------------------------------------------------------

    def versions(self) -> list[Version]:
        self.call(self.client.load_collection, self.meta)
        rows = self.call(self.client.query, self.meta, filter="version >= 0", output_fields=["record"],
                          limit=QUERY_ROWS, consistency_level="Strong")  # a version just written is seen
        return sorted((Version(**json.loads(row["record"])) for row in rows), key=lambda v: v.version)

    def current_version(self) -> int | None:
        if self.alias not in self.call(self.client.list_aliases).get("aliases", []):
            return None
        described = self.call(self.client.describe_alias, self.alias)
        return int(described["collection_name"].rsplit("_v", 1)[1])

    def get_version(self, number: int) -> Version:
        for version in self.versions():
            if version.number == number:
                return version
        raise UnknownVersion(self.location, number, [v.version for v in self.versions()])

    def set_current(self, number: int) -> Version:
        chosen = self.get_version(number)
        self.switch_alias(number)
        self.refresh()
        return chosen

    def switch_alias(self, number: int) -> None:
        """Point the store's alias at version `number`'s collection: one call."""
        target = self.collection(number)
        if self.current_version() is None:
            self.call(self.client.create_alias, target, self.alias)
        else:
            self.call(self.client.alter_alias, target, self.alias)

    def refresh(self) -> None:
        self._version = self._subwords = None
        self._keys = self._key_to_id = self._matrix = self._searcher = self._head = self._norms = self._ranks = None

    def info(self) -> dict:
        versions = []
        for version in self.versions():
            versions.append({**version.summary(), "bytes": version.count * version.dim * 4})  # the vectors
        current = self.current_version()
        index = None
        if current is not None:
            tuned = self.get_version(current).config.get("index", {})
            index = {"kind": "milvus-hnsw", "version": current, "recall_at_10": tuned.get("recall_at_10"),
                     "params": tuned, "factory": f"HNSW{tuned.get('M', '')}", "bytes": None, "stale": False}
        return {"store": self.location, "current": current, "versions": versions, "index": index}

    def index_state(self) -> dict | None:
        return None  # Milvus indexes each version as it is written: nothing for `simdex index` to do

    # -- vocabulary and vectors ----------------------------------------------------------------------

    @property
    def data_collection(self) -> str:
        """The collection of the version read, loaded (a restarted Milvus holds collections released)."""
        name = self.collection(self.version.number)
        if name not in self._loaded:
            self.call(self.client.load_collection, name)
            self._loaded.add(name)
        return name

    def _rows(self, fields: list[str]) -> dict[str, list]:
        """Every row's `fields`, in row order (read with a query iterator, a batch at a time)."""
        columns = {field: [None] * self.version.count for field in fields}
        iterator = self.call(self.client.query_iterator, self.data_collection, batch_size=QUERY_ROWS, filter="row >= 0",
                              output_fields=["row", *fields])
        while True:
            batch = self.call(iterator.next)
            if not batch:
                break
            for record in batch:
                for field in fields:
                    columns[field][record["row"]] = record[field]
        iterator.close()
        return columns

    def _vocabulary(self) -> None:
        """Keys, original norms and ranks, read together once (a push or pull wants all three)."""
        if self._keys is None:
            columns = self._rows(["key", "norm", "rank"])
            self._keys = columns["key"]
            self._norms = np.array(columns["norm"], dtype=np.float32)
            self._ranks = np.array(columns["rank"], dtype=np.int64)

    def keys(self) -> list[str]:
        self._vocabulary()
        return self._keys

    def key_to_id(self) -> dict[str, int]:
        if self._key_to_id is None:
            self._key_to_id = {key: i for i, key in enumerate(self.keys())}
        return self._key_to_id

    def find(self, word: str) -> int | None:
        return self.key_to_id().get(word)

    def keys_of(self, ids) -> list[str]:
        keys = self.keys()
        return [keys[i] for i in ids]

    def close_spellings(self, word: str, n: int = 3) -> list[str]:
        import difflib

        return difflib.get_close_matches(word, self.keys()[:100_000], n=n, cutoff=0.75)

    def norms(self) -> np.ndarray:
        self._vocabulary()
        return self._norms

    def norms_of(self, ids) -> np.ndarray:
        return self.norms()[np.asarray(ids, dtype=np.int64)]

    def ranks(self) -> np.ndarray:
        self._vocabulary()
        return self._ranks

    def external_ids(self, rows) -> list:
        if not rows:
            return []
        found = self.call(self.client.query, self.data_collection, ids=[int(r) for r in rows],
                           output_fields=["row", "external_id"])
        given = {record["row"]: record["external_id"] or None for record in found}
        return [given.get(int(r)) for r in rows]

    def row_of_text(self, text: str) -> int | None:
        return self.key_to_id().get(text)

    def row_of_external_id(self, external_id: str) -> int | None:
        found = self.call(self.client.query, self.data_collection, filter=f"external_id == {json.dumps(external_id)}",
                           output_fields=["row"], limit=1)
        return found[0]["row"] if found else None

    def matrix(self) -> np.ndarray:
        """The version's vectors, read into this process once (for exact search and evaluation)."""
        if self._matrix is None:
            vectors = self._rows(["vector"])["vector"]
            self._matrix = np.array(vectors, dtype=np.float32).reshape(self.version.count, self.version.dim)
        return self._matrix

    def vectors(self):
        return self._matrix if self._matrix is not None else RemoteRows(self)

    def head(self, n: int) -> np.ndarray:
        """The first n rows' vectors, read once (the largest head read so far is kept)."""
        if self._matrix is not None:
            return self._matrix[:n]
        if self._head is None or len(self._head) < n:
            self._head = self.fetch_rows(np.arange(n))
        return self._head[:n]

    def fetch_rows(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids`, in that order (one query per 16,384 distinct ids)."""
        ids = np.asarray(ids, dtype=np.int64)
        unique = np.unique(ids)
        found = {}
        for start in range(0, len(unique), QUERY_ROWS):
            part = unique[start:start + QUERY_ROWS].tolist()
            for record in self.call(self.client.query, self.data_collection, ids=part, output_fields=["row", "vector"]):
                found[record["row"]] = record["vector"]
        missing = [int(i) for i in unique if int(i) not in found]
        if missing:
            raise MilvusFault(f"{self.location}: rows {missing[:5]} of version {self.version.number} are missing")
        return np.array([found[int(i)] for i in ids], dtype=np.float32).reshape(len(ids), self.version.dim)

    # -- search ----------------------------------------------------------------------------------------

    def searcher(self):
        if self._searcher is None:
            self._searcher = MilvusSearcher(self, self.version.config.get("index", {}).get("ef", 64))
        return self._searcher

    def search_vectors(self, xq, k, *, restrict=None, exact=False, exclude=None, subset=None):
        query.check_k(k)
        if subset is not None and (exact or len(subset.rows) <= EXACT_HEAD):
            # a filter keeping few rows: those rows, read and searched exactly (Milvus's filtered
            # HNSW search misses answers when its filter keeps few rows)
            return query.search_rows(self.vectors(), xq, k, subset.rows, exclude=exclude)
        if exact:
            return query.search(self.matrix(), xq, k, restrict=restrict, exclude=exclude)
        extra = 0 if exclude is None else max((len(ids) for ids in exclude), default=0)
        expression = None if subset is None else subset.where.milvus(FIELD_COLUMN.format, MISSING_COLUMN.format)
        D, I = self.searcher().search(xq, k + extra, restrict=restrict, expression=expression)
        return (D, I) if exclude is None else query.drop_excluded(D, I, exclude, k)

    def rows_where(self, where) -> np.ndarray:
        """The rows whose fields pass the filter: Milvus evaluates its own expression of it."""
        iterator = self.call(self.client.query_iterator, self.data_collection, batch_size=QUERY_ROWS,
                             filter=where.milvus(FIELD_COLUMN.format, MISSING_COLUMN.format), output_fields=["row"])
        rows = []
        while True:
            batch = self.call(iterator.next)
            if not batch:
                break
            rows += [record["row"] for record in batch]
        iterator.close()
        return np.sort(np.array(rows, dtype=np.int64))

    def field_values(self, rows, names) -> list[dict]:
        if not names or not len(rows):
            return [{} for _ in rows]
        columns = [FIELD_COLUMN.format(name) for name in names] + [MISSING_COLUMN.format(name) for name in names]
        found = {record["row"]: record for record in self.call(
            self.client.query, self.data_collection, ids=[int(r) for r in rows], output_fields=["row", *columns])}
        return [{name: None if found.get(int(r), {}).get(MISSING_COLUMN.format(name), True) else
                 found[int(r)][FIELD_COLUMN.format(name)] for name in names} for r in rows]

    # -- writing ---------------------------------------------------------------------------------------

    def new_version(self, *, kind: str, dim: int, source=None, sha256=None, format=None, parent=None,
                    config=None, target_recall: float = 0.95):
        from .milvus_writer import MilvusWriter

        return MilvusWriter(self, kind=kind, dim=dim, fields=dict(source=source, sha256=sha256, format=format,
                                                                   parent=parent, config=config or {}),
                            target_recall=target_recall)


class RemoteRows:
    """A version's rows read from Milvus on demand: `rows[ids]` fetches just those vectors."""

    def __init__(self, store: MilvusStore):
        self.store = store
        self.shape = (store.version.count, store.version.dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, ids):
        if isinstance(ids, slice):
            ids = np.arange(*ids.indices(self.shape[0]))
        scalar = np.ndim(ids) == 0
        rows = self.store.fetch_rows(np.atleast_1d(ids))
        return rows[0] if scalar else rows


class MilvusSearcher:
    """Search through the collection's HNSW index; analogies over-fetch and re-rank exactly
    (the same code as the local index: indexes/searcher.py)."""

    def __init__(self, store: MilvusStore, ef: int):
        self.store, self.ef = store, int(ef)
        self.matrix = store.vectors()
        self.kind = "milvus-hnsw"

    def describe(self) -> str:
        return f"Milvus HNSW (ef {self.ef}) at {self.store.location}"

    def analogies(self, abc_ids, k: int, method: str = "add", restrict: int | None = None):
        from ...indexes.searcher import Searcher  # the local index's over-fetch and exact re-rank

        return Searcher.analogies(self, abc_ids, k, method=method, restrict=restrict)

    def search(self, xq: np.ndarray, k: int, restrict: int | None = None, expression: str | None = None):
        """(D, I) for all queries in one request; -1 / -inf where fewer than k rows qualify.
        A restriction to the first N <= EXACT_HEAD rows is searched exactly over those rows (read
        once): a filtered HNSW search misses answers when the filter keeps few rows. `expression`:
        a Milvus filter on the rows' fields (a `--where`), which Milvus applies."""
        if restrict and restrict < self.store.version.count and restrict <= EXACT_HEAD and not expression:
            return query.search(self.store.head(restrict), np.asarray(xq, dtype=np.float32), k)
        nq = len(xq)
        D = np.full((nq, k), -np.inf, dtype=np.float32)
        I = np.full((nq, k), -1, dtype=np.int64)
        params = {"metric_type": "IP", "params": {"ef": max(self.ef, k)}}
        filters = [f"row < {int(restrict)}"] if restrict and restrict < self.store.version.count else []
        expression = " and ".join(filters + ([expression] if expression else []))
        step = max(1, min(1024, request_bytes() // (4 * xq.shape[1] + 64)))
        for start in range(0, nq, step):
            part = np.asarray(xq[start:start + step], dtype=np.float32)
            hits = self.store.call(self.store.client.search, self.store.data_collection, data=part.tolist(), limit=k,
                                    filter=expression, search_params=params, output_fields=[])
            for q, found in enumerate(hits, start):
                for j, hit in enumerate(found[:k]):
                    D[q, j], I[q, j] = hit["distance"], hit.id  # the primary key, "row" (named "id" by some servers)
        return D, I


def request_bytes() -> int:
    """The bytes one insert or search request may carry: half the server's default 64 MB gRPC
    limit, or SIMDEX_MILVUS_REQUEST_MB for a server configured lower."""
    given = os.environ.get(REQUEST_VARIABLE)
    if not given:
        return 32 << 20
    try:
        megabytes = float(given)
    except ValueError:
        megabytes = float("nan")
    if not 0 < megabytes < 1 << 20:  # nan fails too
        raise BadOption(f"{REQUEST_VARIABLE}={given}: give the megabytes per request, a number above 0")
    return max(1, int(megabytes * (1 << 20)))


_OVER_LIMIT = re.compile(r"larger than max \((\d+) vs\. (\d+)\)")


def _reason(error: Exception) -> str:
    details = getattr(error, "details", None)  # a gRPC error: its status text, not its repr
    text = details() if callable(details) else str(getattr(error, "message", "") or error)
    over = _OVER_LIMIT.search(text or "")
    if over:
        sent, limit = map(int, over.groups())
        return (f"a request of {sent:,} bytes is over the server's limit of {limit:,} bytes "
                f"(proxy.grpc.serverMaxRecvSize); set {REQUEST_VARIABLE} below {limit / (1 << 20):g} and retry")
    text = text.strip().splitlines()[0] if text and text.strip() else ""
    return text or error.__class__.__name__


def _listening(uri: str) -> bool:
    """Whether something accepts TCP connections at the uri's host and port."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 19530), timeout=3):
            return True
    except OSError:
        return False

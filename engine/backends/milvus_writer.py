"""Writing a version into Milvus (engine/milvus.py has the layout): its own collection, filled in
batches under the server's request limit, indexed with checked parameters, loaded, tuned to a
recall target against exact search; only then its record is inserted and the alias switched.
A failure anywhere drops the unfinished collection and leaves the alias as it was."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import numpy as np

from .. import query
from ..errors import MilvusFault
from ..store import Version, VersionWriter

HNSW = {"M": 16, "efConstruction": 200}
FIELD_COLUMN = "f_{}"  # a text's field, as a scalar field of a version's collection
MISSING_COLUMN = "m_{}"  # true where the text had no value for the field
EF_CHOICES = (16, 32, 64, 128, 256, 512, 1024)


class MilvusWriter(VersionWriter):
    """A new version written into its own collection; see the module's notes for the order."""

    def __init__(self, store, *, kind: str, dim: int, fields: dict, target_recall: float):
        self.store, self.kind, self.dim, self.fields = store, kind, dim, fields
        self.target_recall = target_recall
        self.number = max((v.version for v in store.versions()), default=0) + 1
        self.name = store.collection(self.number)
        self._count = 0
        self.version = None
        self._sample: list[np.ndarray] = []  # rows kept to tune the index against exact search
        client = store.client
        if store.call(client.has_collection, self.name):  # left by a write that died: never current
            store.call(client.drop_collection, self.name)
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("key", DataType.VARCHAR, max_length=65_535)
        schema.add_field("norm", DataType.FLOAT)
        schema.add_field("rank", DataType.INT64)
        schema.add_field("external_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        # a sentence version's fields: a scalar field each, and a flag for a text without a value
        self.kinds = dict((fields.get("config") or {}).get("fields") or {})
        for name, kind in self.kinds.items():
            column_type = {"text": DataType.VARCHAR, "integer": DataType.INT64, "real": DataType.DOUBLE}[kind]
            extra = {"max_length": 65_535} if kind == "text" else {}
            schema.add_field(FIELD_COLUMN.format(name), column_type, **extra)
            schema.add_field(MISSING_COLUMN.format(name), DataType.BOOL)
        store.call(client.create_collection, self.name, schema=schema)

    @property
    def count(self) -> int:
        return self._count

    def append(self, unit_rows: np.ndarray, keys, norms, ranks, hashes=None, external_ids=None,
               fields=None) -> None:
        unit_rows = np.asarray(unit_rows, dtype=np.float32)
        per_row = self.dim * 4 + 64 + max((len(k.encode("utf-8")) for k in keys), default=0)
        step = max(1, self.store.request_bytes() // per_row)
        first = self.count  # the row number of keys[0]
        for start in range(0, len(keys), step):
            end = min(start + step, len(keys))
            records = [{"row": first + i, "key": keys[i], "norm": float(norms[i]), "rank": int(ranks[i]),
                        "external_id": "" if external_ids is None or external_ids[i] is None else
                        str(external_ids[i]), "vector": unit_rows[i].tolist()} for i in range(start, end)]
            if self.kinds:
                for i, record in zip(range(start, end), records):
                    record.update(self._field_values(None if fields is None else fields[i]))
            self.store.call(self.store.client.insert, self.name, records)
            self._count += end - start
        self._sample.append(unit_rows)  # the exact answers the index is tuned against

    def _field_values(self, values: dict | None) -> dict:
        out = {}
        for name, kind in self.kinds.items():
            value = None if values is None else values.get(name)
            out[MISSING_COLUMN.format(name)] = value is None
            out[FIELD_COLUMN.format(name)] = ({"text": "", "integer": 0, "real": 0.0}[kind] if value is None else
                                              {"text": str, "integer": int, "real": float}[kind](value))
        return out

    def commit(self, metrics: dict | None = None, make_current: bool = True) -> Version:
        store, client = self.store, self.store.client
        try:
            store.call(client.flush, self.name)
            tuned = self._index()
            record = Version(version=self.number, kind=self.kind, count=self.count, dim=self.dim,
                             source=self.fields.get("source"), sha256=self.fields.get("sha256"),
                             format=self.fields.get("format"), parent=self.fields.get("parent"),
                             created=time.strftime("%Y-%m-%dT%H:%M:%S"),
                             config={**(self.fields.get("config") or {}), "index": tuned}, metrics=metrics or {})
            store.call(client.insert, store.meta, [{"version": self.number, "record": json.dumps(asdict(record)),
                                                     "vector": [0.0, 0.0]}])
            store.call(client.flush, store.meta)
            if make_current:
                store.switch_alias(self.number)
        except BaseException:
            self.abort()
            raise
        store.refresh()
        self.version = record
        return record

    def _index(self) -> dict:
        """Build the HNSW index, check Milvus applied its parameters, load the collection and pick
        the smallest ef whose recall@10 on sample rows reaches the target (against exact search)."""
        store, client = self.store, self.store.client
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_name="vector", index_type="HNSW", metric_type="IP",
                        params={"params": json.dumps(HNSW)})
        store.call(client.create_index, self.name, index)
        applied = store.call(client.describe_index, self.name, index_name="vector").get("params", {})
        if {key: applied.get(key) for key in HNSW} != HNSW:
            raise MilvusFault(f"{store.location}: Milvus did not apply the index parameters {HNSW} (it reports "
                              f"{applied})")
        store.call(client.load_collection, self.name)
        matrix = np.concatenate(self._sample) if self._sample else np.zeros((0, self.dim), np.float32)
        rng = np.random.default_rng(0)
        sample = rng.choice(len(matrix), size=min(200, len(matrix)), replace=False)
        k = min(10, len(matrix))
        if k == 0:
            return {**HNSW, "ef": 64, "recall_at_10": None}
        _, truth = query.search(matrix, matrix[sample], k)
        for ef in EF_CHOICES:
            hits = store.call(client.search, self.name, data=matrix[sample].tolist(), limit=k,
                               search_params={"metric_type": "IP", "params": {"ef": max(ef, k)}}, output_fields=[],
                               consistency_level="Strong")  # every row just inserted
            found = [{hit.id for hit in row} for row in hits]
            recall = float(np.mean([len(found[q] & set(truth[q].tolist())) / k for q in range(len(sample))]))
            if recall >= self.target_recall or ef == EF_CHOICES[-1]:
                return {**HNSW, "ef": ef, "recall_at_10": round(recall, 4), "target_recall": self.target_recall}

    def abort(self) -> None:
        try:
            self.store.client.drop_collection(self.name)
        except Exception:
            pass

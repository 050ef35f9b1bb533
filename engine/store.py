"""The store contract: what every store answers, whatever holds it, and what every writer does.

    store = Store.open("default")      # a path, a bare name, or an address: milvus://HOST:PORT/NAME
    store.neighbors("king", k=10)      # [("prince", 0.82...), ...]
    store.analogy("man", "king", "woman")        # [("queen", 0.85...)]

Three types say what a store is:

- `Store` (here): the read side, which every backend answers. A backend provides the
  primitives marked abstract below (its versions; the keys and their rows; the unit-length
  matrix; a searcher, or None for exact search) and the query verbs (neighbours, analogies,
  similarities, gensim's doesnt_match / rank / n_similarity, sentence search) are written once
  over them. Every store also writes versions (`new_version`) and moves its current one
  (`set_current`). tests/test_store_contract.py holds every backend to this.
- `VersionWriter` (here): what every backend's writer does: append rows with their keys,
  commit (the version appears whole, or not at all), abort.
- `LocalStore` (engine/backends/local.py): what only a store with a folder of its own adds:
  segments, staged rows, SQLite transactions, an index file, training files and models. Code
  that needs one asks for it by name (`local_store(store, what)`), and a Milvus store is told
  what to do instead.

A backend is chosen by its address's scheme (`BACKENDS`); a path or a bare name is a local store.
"""

from __future__ import annotations

import abc
import importlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import query
from .errors import BadOption, BadQuery, EmptyStore, UnknownWord, WrongKind, check_choice

ANALOGY_METHODS = ("add", "mul")
STORE_KINDS = ("words", "sentences")  # what a store holds
# address scheme -> (module under engine/, class), imported when an address names it ("": a path or a
# name); as Django names its database backends, by name, so that this contract imports none of them
BACKENDS = {"": ("backends.local", "LocalStore"), "milvus": ("backends.milvus", "MilvusStore"),
            "milvus-lite": ("backends.milvus", "MilvusStore")}


def data_dir() -> Path:
    """The per-user directory that holds named stores ($XDG_DATA_HOME/simdex)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "simdex"


def default_store_path() -> Path:
    """Where a store lives when neither --store nor SIMDEX_STORE says: the per-user `default`."""
    return data_dir() / "default"


def resolve_location(name_or_path) -> Path:
    """A path (anything with a `/`, or `~`), or a bare name: the store of that name in the
    per-user data directory. None means `default`."""
    if name_or_path is None or str(name_or_path) == "":
        return default_store_path()
    text = str(name_or_path)
    if "/" in text or text.startswith("~") or text in (".", ".."):
        return Path(text).expanduser()
    return data_dir() / text


def backend_for(location) -> type["Store"]:
    """The Store class for `location`: by its scheme (milvus://, milvus-lite://), else local."""
    text = "" if location is None else str(location)
    scheme, separator, _ = text.partition("://")
    if not separator:
        scheme = ""
    elif scheme not in BACKENDS or not scheme:
        raise BadOption(f"{text}: unknown store address {scheme}:// (a store is a path, a name, "
                        f"{', '.join(f'{s}://...' for s in BACKENDS if s)})")
    module, name = BACKENDS[scheme]
    return getattr(importlib.import_module(f".{module}", __package__), name)


@dataclass(frozen=True)
class Version:
    version: int
    kind: str  # "words" or "sentences"
    count: int
    dim: int
    source: str | None
    sha256: str | None
    format: str | None
    parent: int | None
    created: str
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def number(self) -> int:
        """The version's number (the record's `version` field, as JSON and the CLI name it)."""
        return self.version

    def summary(self) -> dict:
        keep = ("version", "kind", "count", "dim", "source", "parent", "created")
        return {name: value for name, value in asdict(self).items() if name in keep}


class VersionWriter(abc.ABC):
    """Writes one new version of a store. Use it as a context manager: leaving the block with an
    exception before `commit()` (Ctrl-C included) aborts, and the store is as it was."""

    version: Version | None = None  # set by commit()

    @property
    @abc.abstractmethod
    def count(self) -> int:
        """Rows of the version so far."""

    @abc.abstractmethod
    def append(self, unit_rows: np.ndarray, keys: list[str], norms, ranks, hashes=None, external_ids=None,
               fields=None) -> None:
        """Add rows (already unit length) with their keys, original norms and source ranks (and,
        for sentences, content hashes, external ids and the fields the config declares, a dict
        per row)."""

    @abc.abstractmethod
    def commit(self, metrics: dict | None = None, make_current: bool = True) -> Version:
        """Record the version whole (and make it current); nothing of it is visible before."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop everything written so far."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self.version is None:
            self.abort()
        return False


class Store(abc.ABC):
    """One store, read at one version (the current one unless asked otherwise): the read side
    every backend answers (see the module's notes)."""

    notice: str | None = None  # why a query searched exactly although an index exists

    # -- opening: one entry point, whatever holds the store ------------------------------------

    @classmethod
    def open(cls, location, version: int | None = None, read_only: bool = False) -> "Store":
        """Open an existing store (a path, a bare name or an address); raises StoreNotFound, or
        UnknownVersion for a bad `version`."""
        return backend_for(location).open(location, version=version, read_only=read_only)

    @classmethod
    def create(cls, location) -> "Store":
        """Open the store at `location`, creating it when it does not exist."""
        return backend_for(location).create(location)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- what a backend provides ----------------------------------------------------------------

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """The path or address, as messages name the store."""

    _pinned: int | None = None         # the version asked for at open (None: the current one)
    _version: Version | None = None    # the version read, once read

    @property
    def version(self) -> Version:
        """The version this store reads: the one asked for at open, else the current one when
        first read (so keys and matrix always come from the same version)."""
        if self._version is None:
            number = self._pinned if self._pinned is not None else self.current_version()
            if number is None:
                raise EmptyStore(self.location)
            self._version = self.get_version(number)
        return self._version

    @abc.abstractmethod
    def versions(self) -> list[Version]:
        """Every version, oldest first."""

    @abc.abstractmethod
    def current_version(self) -> int | None:
        """The current version's number (None for a store with no version yet)."""

    @abc.abstractmethod
    def get_version(self, number: int) -> Version:
        """Version `number`; raises UnknownVersion."""

    @abc.abstractmethod
    def set_current(self, number: int) -> Version:
        """Make version `number` current (roll back to it, or forward again)."""

    @abc.abstractmethod
    def refresh(self) -> None:
        """Forget what was read, so that the next read sees what was committed since."""

    @abc.abstractmethod
    def keys(self) -> list[str]:
        """The words (or sentence texts), in row order."""

    @abc.abstractmethod
    def find(self, word: str) -> int | None:
        """The row of a stored key (a word, or a sentence store's text), or None."""

    def id_of(self, word: str) -> int:
        """The row of a stored key; raises UnknownWord (with close spellings, for words)."""
        row = self.find(word)
        if row is None:
            if self.version.kind == "sentences":
                raise UnknownWord(word, where="the stored texts")
            raise UnknownWord(word, self.close_spellings(word))
        return row

    @abc.abstractmethod
    def keys_of(self, ids) -> list[str]:
        """The keys of the given rows, in the given order."""

    @abc.abstractmethod
    def close_spellings(self, word: str, n: int = 3) -> list[str]:
        """Up to n stored words that look like `word`."""

    @abc.abstractmethod
    def vectors(self):
        """The rows to search: (n, d) float32 unit rows, indexable by row ids (a matrix, or a
        view that reads rows on demand)."""

    @abc.abstractmethod
    def matrix(self) -> np.ndarray:
        """(n, d) float32, unit rows (zero rows stay zero); row i is keys()[i]."""

    @abc.abstractmethod
    def norms(self) -> np.ndarray:
        """Each row's length before normalisation (it carries frequency information)."""

    @abc.abstractmethod
    def norms_of(self, ids) -> np.ndarray:
        """The original norms of the given rows, in the given order."""

    @abc.abstractmethod
    def ranks(self) -> np.ndarray:
        """Each row's position among its source's vectors (or input lines), from 1."""

    @abc.abstractmethod
    def row_of_text(self, text: str) -> int | None:
        """A sentence store's row holding exactly `text`, or None."""

    @abc.abstractmethod
    def row_of_external_id(self, external_id: str) -> int | None:
        """A sentence store's row given `external_id` by its input, or None."""

    @abc.abstractmethod
    def external_ids(self, rows) -> list:
        """The external id of each row (None where the input gave none)."""

    @abc.abstractmethod
    def searcher(self):
        """The index searcher for the version read, or None: search exactly (then `notice`
        may say why)."""

    @abc.abstractmethod
    def index_state(self) -> dict | None:
        """What `simdex info` and `simdex stores` show of the index, or None."""

    @abc.abstractmethod
    def info(self) -> dict:
        """`simdex info`: {store, current, versions (with bytes), index}."""

    @abc.abstractmethod
    def new_version(self, *, kind: str, dim: int, source=None, sha256=None, format=None, parent=None,
                    config=None) -> VersionWriter:
        """A writer for a new version; use it as a context manager."""

    def stored_file(self, relative: str | None) -> Path | None:
        """A file the store keeps beside its vectors (a quantised or fine-tuned model), by the
        name relative to the store that a version records; None for a store without a folder."""
        return None

    def tensor(self, device=None):
        """The matrix as a torch tensor on `device` (default: CUDA when there is one), for
        `torch.nn.Embedding.from_pretrained(store.tensor(), freeze=False)`. Imports torch."""
        import torch

        from .devices import pick_device

        return torch.from_numpy(np.ascontiguousarray(self.matrix())).to(pick_device(device))

    # -- lookups shared by every kind of store ---------------------------------------------------

    def ids_of(self, words) -> np.ndarray:
        return np.array([self.id_of(word) for word in words], dtype=np.int64)

    def key_to_id(self) -> dict[str, int]:
        """The whole vocabulary as a dict, for work that looks up many words."""
        return {key: i for i, key in enumerate(self.keys())}

    def require_kind(self, kind: str, what: str) -> None:
        if self.version.kind != kind:
            other = "a word store (`simdex ingest`)" if kind == "words" else "a sentence store (`simdex encode`)"
            raise WrongKind(f"{self.location}: {what} needs {other}; this store holds {self.version.kind}")

    # -- neighbours -----------------------------------------------------------------------------------

    def neighbors(self, query_text: str, k: int = 10, restrict: int | None = None,
                  exact: bool = False, where: str | None = None) -> list[tuple[str, float]]:
        """Nearest keys to a word or an expression such as "king - man + woman", best first.

        The query's own words are left out, as in gensim's most_similar. `restrict` searches
        only the first N rows (the most frequent words of a frequency-sorted source). The
        store's index answers when it was built for this version, unless `exact`. `where`
        filters a sentence store's texts on their fields (engine/sentences/where.py).
        """
        text = query_text.strip()
        if self.version.kind == "words" and " " not in text and not where and not self.from_subwords([text]):
            return self.neighbors_of_word(text, k=k, restrict=restrict, exact=exact)
        return self.neighbors_many([query_text], k=k, restrict=restrict, exact=exact, where=where)[0]

    def neighbors_of_word(self, word: str, k: int = 10, restrict: int | None = None, exact: bool = False):
        """neighbors() of one stored key: its row's vector, its own row left out."""
        row = self.id_of(word)
        D, I = self.search_vectors(self.vectors()[[row]], k, restrict=restrict, exact=exact, exclude=[[row]])
        return self._pairs(D[0], I[0])

    def neighbors_many(self, query_texts, k: int = 10, restrict: int | None = None, exact: bool = False,
                       where: str | None = None):
        """neighbors() for many queries, answered in one batch."""
        from .sentences.search import Subset

        subset = Subset.of(self, where)
        if len(query_texts) > 50:
            self.key_to_id()  # one read of the vocabulary beats many lookups
        if not query_texts:
            return []
        try:
            rows = [self.query_rows(text) for text in query_texts]
        except UnknownWord:
            if self.subwords() is None:
                raise
            queries = [self.query_vector(text) for text in query_texts]  # a word from its subwords: one by one
            vectors, exclude = [vector for vector, _ in queries], [rows for _, rows in queries]
        else:
            exclude = [np.concatenate([pos_ids, neg_ids]).astype(np.int64) for pos_ids, neg_ids in rows]
            wanted = np.unique(np.concatenate(exclude))
            block = np.asarray(self.vectors()[wanted])  # one read of every query's rows (one request, remotely)
            vectors = [query.mean_of_unit_rows(block, np.searchsorted(wanted, pos_ids),
                                               np.searchsorted(wanted, neg_ids)) for pos_ids, neg_ids in rows]
        D, I = self.search_vectors(np.stack(vectors), k, restrict=restrict, exact=exact, exclude=exclude,
                                   subset=subset)
        return [self._pairs(D[i], I[i]) for i in range(len(vectors))]

    def query_vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(the unit query vector of an expression or a stored text, the rows it leaves out):
        gensim's mean of the terms' unit vectors, a word the store does not hold taken from its
        subwords where the version has them."""
        if self.version.kind == "sentences":
            row = self.sentence_row(text)
            return np.asarray(self.vectors()[[row]][0], dtype=np.float32), np.array([row], dtype=np.int64)
        positive, negative = query.parse_expression(text)
        found = [self.vector_of(word) for word in positive + negative]
        unit = np.stack([vector for vector, _ in found])
        signs = np.array([1.0] * len(positive) + [-1.0] * len(negative), dtype=np.float32)
        mean = query.normalize((unit * signs[:, None]).sum(axis=0) / len(found))
        return mean, np.array([row for _, row in found if row >= 0], dtype=np.int64)

    def query_rows(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(positive rows, negative rows) of a query: an expression over words, or one stored
        text (the text itself, its external id, or its row number) in a sentence store."""
        if self.version.kind == "sentences":
            return np.array([self.sentence_row(text)], dtype=np.int64), np.zeros(0, dtype=np.int64)
        positive, negative = query.parse_expression(text)
        return self.ids_of(positive), self.ids_of(negative)

    def sentence_row(self, text: str) -> int:
        for row in (self.row_of_text(text.strip()), self.row_of_external_id(text.strip())):
            if row is not None:
                return row
        if text.strip().isdigit() and int(text) < self.version.count:
            return int(text)
        raise UnknownWord(text, where="the stored texts (give a stored text, its id, or use `simdex search`)")

    def neighbors_of_vector(self, vector, k: int = 10, restrict: int | None = None, exact: bool = False):
        vector = query.as_query_matrix(vector, self.version.dim)
        D, I = self.search_vectors(query.normalize(vector), k, restrict=restrict, exact=exact)
        return self._pairs(D[0], I[0])

    def search_vectors(self, xq: np.ndarray, k: int, *, restrict: int | None = None, exact: bool = False,
                       exclude=None, subset=None) -> tuple[np.ndarray, np.ndarray]:
        """(D, I) of the k best rows for each query row (unit length), leaving out each query's
        `exclude` ids: through the store's index unless `exact` or there is none. `subset` (a
        search.Subset: the rows a `--where` filter keeps) limits the answers to its rows."""
        query.check_k(k)
        rows = None if subset is None else subset.rows
        searcher = None if exact else self.searcher()
        if searcher is None:
            if rows is not None:
                return query.search_rows(self.vectors(), xq, k, rows, exclude=exclude)
            return query.search(self.vectors(), xq, k, restrict=restrict, exclude=exclude)
        extra = 0 if exclude is None else max((len(ids) for ids in exclude), default=0)
        D, I = searcher.search(xq, k + extra, restrict=restrict, rows=rows)
        return (D, I) if exclude is None else query.drop_excluded(D, I, exclude, k)

    # -- fields kept with a sentence store's texts -------------------------------------------------------

    def fields(self) -> dict[str, str]:
        """{name: "text" | "integer" | "real"} of the fields the version keeps with its texts."""
        return dict(self.version.config.get("fields") or {}) if self.version.kind == "sentences" else {}

    @abc.abstractmethod
    def rows_where(self, where) -> np.ndarray:
        """The sorted row ids whose fields pass a parsed `--where` filter (sentences/where.py)."""

    @abc.abstractmethod
    def field_values(self, rows, names) -> list[dict]:
        """{field: value} of the given rows, in the given order."""

    def has_text_index(self) -> bool:
        """Whether the store keeps a full-text index of its texts (`keyword_rows`, `term_documents`):
        a local store does."""
        return False

    # -- analogies and similarities ----------------------------------------------------------------

    def analogy(self, a: str, b: str, c: str, k: int = 1, method: str = "add", restrict: int | None = None,
                exact: bool = False):
        """D such that a is to b as c is to D ("man", "king", "woman" -> "queen"), best first.

        method "add" is 3CosAdd (gensim most_similar), "mul" is 3CosMul (most_similar_cosmul).
        `restrict` answers from the first N words only, for both methods. Through an index,
        candidates are over-fetched and re-ranked exactly.
        """
        if self.from_subwords([a, b, c]):  # a word from its subwords: an exact search with its vector
            self.require_kind("words", "an analogy")
            check_choice("method", method, ANALOGY_METHODS)
            found = [self.vector_of(word) for word in (a, b, c)]
            exclude = [row for _, row in found if row >= 0]
            D, I = query.analogy_of_vectors(self.matrix(), *(vector for vector, _ in found), k, method=method,
                                            restrict=restrict, exclude=exclude)
            return self._pairs(D[0], I[0])
        D, I = self.analogies(self.ids_of([a, b, c])[None, :], k, method=method, restrict=restrict, exact=exact)
        return self._pairs(D[0], I[0])

    def analogies(self, abc_ids: np.ndarray, k: int, *, method: str = "add", restrict: int | None = None,
                  exact: bool = False):
        """(D, I) of the k best answers to each question (a, b, c) of row ids."""
        self.require_kind("words", "an analogy")
        check_choice("method", method, ANALOGY_METHODS)
        query.check_k(k)
        searcher = None if exact else self.searcher()
        if searcher is None:
            return query.analogies(self.matrix(), abc_ids, k, method=method, restrict=restrict)
        return searcher.analogies(abc_ids, k, method=method, restrict=restrict)

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two keys; an argument with ` + ` between words (or a list of
        words) is a set of words, compared through their mean (gensim's n_similarity)."""
        if self.version.kind == "sentences":
            first, second = self.vectors_of_texts([a, b])
            return float(np.dot(first, second))
        if isinstance(a, str) and " + " not in a and isinstance(b, str) and " + " not in b:
            if self.from_subwords([a, b]):
                return float(np.dot(self.vector_of(a)[0], self.vector_of(b)[0]))
            rows = self.vectors()[[self.id_of(a), self.id_of(b)]]
            return float(np.dot(rows[0], rows[1]))
        return self.n_similarity(_word_set(a), _word_set(b))

    def n_similarity(self, words1, words2) -> float:
        """Cosine similarity of the means of two sets of words (gensim's n_similarity, which
        averages the vectors as the source gave them: unit rows times their stored norms)."""
        if not words1 or not words2:
            raise BadQuery("n_similarity needs at least one word on each side")
        matrix = self.matrix()
        means = []
        for words in (words1, words2):
            if self.from_subwords(words):  # as the source gives them: a word from its subwords unnormalised
                raw = []
                for word in words:
                    vector, row = self.vector_of(word)
                    raw.append(self.subwords().vector(word) if row < 0 else vector * self.norms_of([row])[0])
                means.append(query.normalize(np.sum(raw, axis=0)))
                continue
            ids = self.ids_of(words)
            means.append(query.normalize((matrix[ids] * self.norms_of(ids)[:, None]).sum(axis=0)))
        return float(np.dot(means[0], means[1]))

    def doesnt_match(self, words) -> tuple[str, float]:
        """The word furthest from the mean of all the words, and its cosine to that mean
        (gensim's doesnt_match)."""
        if len(words) < 2:
            raise BadQuery("doesnt-match needs at least two words")
        if self.from_subwords(words):
            vectors = np.stack([self.vector_of(word)[0] for word in words])
        else:
            vectors = np.asarray(self.matrix()[self.ids_of(words)], dtype=np.float32)
        scores = vectors @ query.mean_of_unit_rows(vectors, np.arange(len(words)))
        # gensim sorts (score, word) pairs: the lowest score wins, ties by word
        score, word = min(zip(scores.tolist(), words))
        return word, score

    def rank(self, a: str, b: str) -> int:
        """Where `b` falls among `a`'s neighbours: 1 + the number of keys (other than `a`)
        strictly closer to `a` than `b` is (gensim's rank)."""
        (vector_a, row_a), (vector_b, row_b) = self.vector_of(a), self.vector_of(b)
        matrix = self.matrix()
        distances = 1 - np.asarray(matrix @ vector_a, dtype=np.float32)
        distance_b = distances[row_b] if row_b >= 0 else 1 - np.float32(np.dot(vector_a, vector_b))
        closer = distances < distance_b
        if row_a >= 0:
            closer[row_a] = False
        return int(closer.sum()) + 1

    # -- words the version does not hold: a fastText model's subwords -------------------------------------

    _subwords = None  # the version's Subwords, False for none, once read

    def subwords(self):
        """The character n-gram buckets of a version ingested from a fastText .bin (a Subwords:
        minn, maxn and the bucket rows, memory-mapped), or None."""
        if self._subwords is None:
            settings = self.version.config.get("subwords") if self.version.kind == "words" else None
            self._subwords = False
            if settings:
                from .words.fasttext import Subwords

                file = settings["file"]
                path = Path(file) if os.path.isabs(file) else self.stored_file(file)
                self._subwords = Subwords.open(path, settings, self.location)
        return self._subwords or None

    def from_subwords(self, words) -> list[str]:
        """The words (of a list, or of an expression) this version answers from their subwords:
        the ones it does not hold, when it has subwords."""
        if self.version.kind != "words" or self.subwords() is None:
            return []
        if isinstance(words, str):
            positive, negative = query.parse_expression(words)
            words = positive + negative
        return [word for word in words if self.find(word) is None]

    def vector_of(self, word: str) -> tuple[np.ndarray, int]:
        """(the unit vector of `word`, its row): its stored row, or its subwords' mean (row -1)
        where the version has subwords; raises UnknownWord (with close spellings) otherwise, or
        when the word has no n-gram the model knows."""
        row = self.find(word)
        if row is None:
            vector = self.subwords().vector(word) if self.subwords() is not None else None
            if vector is None or not np.any(vector):
                raise UnknownWord(word, self.close_spellings(word))
            return query.normalize(vector), -1
        return np.asarray(self.vectors()[[row]][0], dtype=np.float32), row

    def vector(self, word: str) -> np.ndarray:
        """The unit vector of a word: its row, or, in a version with subwords (a fastText .bin),
        the mean of its character n-gram rows, normalised, as fastText's get_word_vector."""
        return self.vector_of(word)[0]

    # -- sentence stores -------------------------------------------------------------------------------

    def encoder(self):
        """The encoder this sentence store's version was made with (loaded once; imports torch)."""
        self.require_kind("sentences", "encoding a query")
        if getattr(self, "_encoder", None) is None:
            from .sentences.model import Encoder

            self._encoder = Encoder.for_settings(self.version.config, store=self)
        return self._encoder

    def encode(self, texts) -> np.ndarray:
        """Unit vectors (n, d) of `texts` with this store's model and settings; nothing stored."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts")
        return self.encoder().encode(list(texts))[0]

    def vectors_of_texts(self, texts) -> np.ndarray:
        """The stored vector of each text that is stored, the encoded one of the others."""
        rows = [self.row_of_text(text.strip()) for text in texts]
        missing = [text for text, row in zip(texts, rows) if row is None]
        encoded = iter(self.encode(missing)) if missing else iter(())
        stored = self.vectors()
        return np.stack([stored[[row]][0] if row is not None else next(encoded) for row in rows])

    def search(self, text: str, k: int = 10, exact: bool = False, where: str | None = None,
               mode: str = "vector") -> list[tuple[str, float]]:
        """The k stored texts nearest to `text` (encoded with the store's own settings), as
        (text, cosine); `where` filters on the texts' fields, `mode` is vector, keyword or
        hybrid (engine/sentences/search.py)."""
        return [(hit.text, hit.score) for hit in self.hits([text], k=k, exact=exact, where=where, mode=mode)[0]]

    def search_many(self, texts, k: int = 10, exact: bool = False, where: str | None = None,
                    mode: str = "vector") -> list[list[tuple]]:
        """For each text, its k best stored texts as (id, text, score): the id is the input's
        external id where it gave one, else the row number."""
        return [[(hit.id, hit.text, hit.score) for hit in hits]
                for hits in self.hits(texts, k=k, exact=exact, where=where, mode=mode)]

    def hits(self, texts, k: int = 10, **options) -> list:
        """For each text, its k best stored texts as search.Hit (with their fields, and in
        keyword and hybrid modes their ranks in each list); `options` as search.search takes."""
        from .sentences.search import search

        return search(self, list(texts), k, **options)

    def _pairs(self, scores, ids) -> list[tuple[str, float]]:
        keep = ids >= 0
        return list(zip(self.keys_of(ids[keep].tolist()), scores[keep].tolist()))


def _word_set(words) -> list[str]:
    """A set of words given as a list, or as one string with ` + ` between the words."""
    if isinstance(words, str):
        parts = [part.strip() for part in words.split(" + ")]
        if any(not part for part in parts):
            raise BadQuery(f"malformed set of words {words!r}: write them as 'a + b + c'")
        return parts
    return list(words)

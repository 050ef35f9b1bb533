"""The `simdex` command. Parses arguments, calls one library function, prints its result.

Every decision lives in engine/ (data) and indexes/ (search). Results go to stdout, as a table
or, with --json, as one JSON object per line; progress and notices go to stderr. A user's
mistake is one `Error:` line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import time

import click

from engine.errors import SimdexError


# -- shared options and output ------------------------------------------------------------------

def store_options(command):
    """--store (env SIMDEX_STORE, default: the per-user store) and --json, on every command."""
    command = click.option("--json", "as_json", is_flag=True, help="One JSON object per line on stdout.")(command)
    command = click.option("--store", "store_path", envvar="SIMDEX_STORE", type=click.Path(),
                           help="Store directory [env SIMDEX_STORE; default ~/.local/share/simdex/default].")(command)
    return command


def k_option(command):
    return click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
                        help="How many answers.")(command)


def user_errors(command):
    """Turn the library's named exceptions into `Error: ...` lines (exit 1)."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SimdexError as e:
            raise click.ClickException(str(e)) from None
    return wrapper


def resolve_store_path(store_path):
    from engine.store import default_store_path
    return store_path or str(default_store_path())


def open_store(store_path, version=None):
    from engine.store import Store
    return Store.open(resolve_store_path(store_path), version=version)


def emit(as_json: bool, record: dict) -> None:
    click.echo(json.dumps(record, ensure_ascii=False) if as_json else record)


def emit_ranked(as_json: bool, title: str, answers) -> None:
    """A query's (word, score) answers: JSON lines `query, rank, word, score`, or a small table."""
    if as_json:
        for rank, (word, score) in enumerate(answers, 1):
            click.echo(json.dumps({"query": title, "rank": rank, "word": word, "score": round(score, 6)},
                                  ensure_ascii=False))
        return
    click.echo(title)
    width = max((len(word) for word, _ in answers), default=4)
    for rank, (word, score) in enumerate(answers, 1):
        click.echo(f"{rank:4d}  {word:<{width}}  {score:.4f}")


class ProgressLine:
    """Progress on stderr (percent, rate, ETA), redrawn at most a few times a second."""

    def __init__(self, label: str, unit: str = "MB"):
        self.label, self.unit = label, unit
        self.started = time.perf_counter()
        self.last = 0.0
        self.shown = False
        self.tty = sys.stderr.isatty()

    def __call__(self, done, total, items):
        now = time.perf_counter()
        elapsed = now - self.started
        if elapsed < 1.0 or now - self.last < (0.25 if self.tty else 10.0):
            return
        self.last = now
        scale = 1e6 if self.unit == "MB" else 1
        rate = done / scale / elapsed
        eta = (total - done) / (done / elapsed) if done else 0
        line = (f"{self.label}: {100 * done / max(total, 1):5.1f}%  {items:,} vectors  "
                f"{rate:,.1f} {self.unit}/s  ETA {eta:,.0f}s")
        click.echo(("\r" + line) if self.tty else line, err=True, nl=not self.tty)
        self.shown = True

    def done(self):
        if self.shown and self.tty:
            click.echo("", err=True)


# -- commands -------------------------------------------------------------------------------------

@click.group()
@click.version_option(package_name="simdex")
def cli():
    """simdex: vector search and similarity for word and sentence embeddings.

    \b
    Start with the packaged GloVe 6B 50d vectors:
        simdex ingest
        simdex analogy man king woman
        simdex neighbors frog
        simdex neighbors "king - man + woman"
    """


@cli.command()
@click.argument("source", required=False)
@click.option("--format", "fmt", type=click.Choice(["auto", "glove", "word2vec", "word2vec-binary", "fasttext"]),
              default="auto", show_default=True, help="The file's format; auto detects it.")
@click.option("--member", help="The file to read inside a .zip archive.")
@click.option("--limit", type=click.IntRange(min=1), help="Read only the first N vectors.")
@click.option("--on-error", type=click.Choice(["fail", "skip"]), default="fail", show_default=True,
              help="On a bad line: stop and change nothing, or skip it and count it.")
@store_options
@user_errors
def ingest(source, fmt, member, limit, on_error, store_path, as_json):
    """Read a vector file into a new version of the store, and make it current.

    SOURCE is a GloVe, word2vec (text or binary) or fastText .vec file, plain or .gz, .bz2,
    .zip. Without SOURCE, the packaged GloVe 6B 50d vectors are read.

    \b
    Examples:
        simdex ingest                       # packaged GloVe 6B 50d
        simdex ingest glove.6B.300d.txt
        simdex ingest wiki.en.vec.gz --limit 200000 --on-error skip
    """
    from engine.ingest import ingest as run_ingest
    from engine.store import Store

    store = Store.create(resolve_store_path(store_path))
    progress = ProgressLine(f"ingest {source or 'packaged GloVe 6B 50d'}",
                            unit="MB" if source else "vectors")
    result = run_ingest(store, source, format=fmt, member=member, limit=limit, on_error=on_error,
                        progress=progress)
    progress.done()
    if result.skipped:
        click.echo(f"skipped {result.skipped} bad line(s), first: {', '.join(result.first_skipped)}", err=True)
    if as_json:
        emit(True, result.as_json())
    else:
        click.echo(f"version {result.version}: {result.count:,} vectors of dimension {result.dim} "
                   f"({result.format}) in {result.seconds:.2f}s; {result.duplicates} duplicate(s), "
                   f"{result.skipped} skipped")


@cli.command()
@store_options
@user_errors
def info(store_path, as_json):
    """Show the store's versions, the current one and the index."""
    with open_store(store_path) as store:
        record = store.info()
    if as_json:
        emit(True, record)
        return
    click.echo(f"store    {record['store']}")
    click.echo(f"current  {record['current']}")
    for v in record["versions"]:
        mark = "*" if v["version"] == record["current"] else " "
        size = f"{v['bytes'] / 2**20:,.1f} MiB" if v["bytes"] is not None else "missing"
        parent = f"  parent {v['parent']}" if v["parent"] else ""
        click.echo(f"{mark} v{v['version']:<3} {v['kind']:<9} {v['count']:>10,} x {v['dim']:<4} {size:>10}  "
                   f"{v['created']}  {v['source']}{parent}")
    index = record["index"]
    click.echo("index    none" if index is None else
               f"index    {index['kind']} on v{index['version']}, recall@10 {index['recall_at_10']}, "
               f"params {index['params']}" + ("  (stale)" if index.get("stale") else ""))


@cli.command()
@click.argument("queries", nargs=-1)
@k_option
@click.option("--restrict", type=click.IntRange(min=1), help="Search only the first N words (the most frequent).")
@click.option("--exact", is_flag=True, help="Brute force, even when an index exists.")
@click.option("--file", "query_file", type=click.File("r", encoding="utf-8"),
              help="Read one query per line ('-' for stdin).")
@click.option("--version", "version", type=int, help="Query this version instead of the current one.")
@store_options
@user_errors
def neighbors(queries, k, restrict, exact, query_file, version, store_path, as_json):
    """Nearest words to each QUERY: a word or an expression like "king - man + woman".

    \b
    Examples:
        simdex neighbors frog
        simdex neighbors "king - man + woman" -k 5
        simdex neighbors --file queries.txt --json
    """
    texts = list(queries)
    if query_file is not None:
        texts += [line.strip() for line in query_file if line.strip()]
    if not texts:
        raise click.UsageError("give at least one QUERY, or --file")
    with open_store(store_path, version) as store:
        answers = store.neighbors_many(texts, k=k, restrict=restrict)
    for text, answer in zip(texts, answers):
        emit_ranked(as_json, text, answer)


@cli.command()
@click.argument("a")
@click.argument("b")
@click.argument("c")
@k_option
@click.option("--method", type=click.Choice(["add", "mul"]), default="add", show_default=True,
              help="3CosAdd (most_similar) or 3CosMul (most_similar_cosmul).")
@click.option("--restrict", type=click.IntRange(min=1), help="Answer only from the first N words.")
@click.option("--exact", is_flag=True, help="Brute force, even when an index exists.")
@click.option("--version", "version", type=int, help="Query this version instead of the current one.")
@store_options
@user_errors
def analogy(a, b, c, k, method, restrict, exact, version, store_path, as_json):
    """D such that A is to B as C is to D: `simdex analogy man king woman` gives queen."""
    with open_store(store_path, version) as store:
        answers = store.analogy(a, b, c, k=k, method=method, restrict=restrict)
    emit_ranked(as_json, f"{a} : {b} :: {c} : ?", answers)


@cli.command()
@click.argument("word1")
@click.argument("word2")
@click.option("--version", "version", type=int, help="Query this version instead of the current one.")
@store_options
@user_errors
def similarity(word1, word2, version, store_path, as_json):
    """Cosine similarity of two words."""
    with open_store(store_path, version) as store:
        score = store.similarity(word1, word2)
    if as_json:
        emit(True, {"a": word1, "b": word2, "score": round(score, 6)})
    else:
        click.echo(f"{word1}  {word2}  {score:.4f}")


@cli.command()
@click.argument("out", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["glove", "word2vec", "word2vec-binary", "npy"]),
              default="glove", show_default=True)
@click.option("--scale", type=click.Choice(["unit", "original"]), default="unit", show_default=True,
              help="Unit-length rows (as stored) or the source's lengths (from the stored norms).")
@click.option("--version", "version", type=int, help="Export this version instead of the current one.")
@store_options
@user_errors
def export(out, fmt, scale, version, store_path, as_json):
    """Write a version's vectors to OUT (npy also writes OUT.vocab.txt)."""
    from engine.export import export as run_export

    with open_store(store_path, version) as store:
        record = run_export(store, out, format=fmt, scale=scale)
    if as_json:
        emit(True, record)
    else:
        click.echo(f"wrote {record['count']:,} vectors of dimension {record['dim']} to {record['path']}")


if __name__ == "__main__":
    cli()

"""The `simdex` command. Parses arguments, calls one library function, prints its result.

Every decision lives in engine/ (data) and indexes/ (search). Results go to stdout, as a table
or, with --json, as one JSON object per line; progress and notices go to stderr. A user's
mistake, or a fault of the machine (a full disk, read-only media), is one `Error:` line and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
import os
import sys

import click

from .engine.errors import MACHINE_ERRNOS, SimdexError
from .engine.progress import Progress
from .engine.records import oov_fields, ranked, to_json
from .engine.sentences import KEYWORD_WEIGHT, RRF_K, VECTOR_WEIGHT
from .engine.training.config import MODELS, EncoderTrainConfig, TrainConfig

TRAINING, ENCODING = TrainConfig(), EncoderTrainConfig()  # the trainer's defaults: shown, never restated
PROGRESS = Progress.to_stderr()  # long work shows its progress on stderr (engine/progress.py)


# -- shared options and output ------------------------------------------------------------------

def store_options(command):
    """--store (env SIMDEX_STORE: a path, or a bare name in the per-user data dir) and --json."""
    command = click.option("--json", "as_json", is_flag=True, help="One JSON object per line on stdout.")(command)
    command = click.option("--store", "store_path", envvar="SIMDEX_STORE",
                           help="A store path (with a /), or a bare name: a store in ~/.local/share/simdex "
                                "[env SIMDEX_STORE; default: default].")(command)
    return command


def k_option(command):
    return click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
                        help="How many answers.")(command)


def exact_option(command):
    return click.option("--exact", is_flag=True, help="Brute force, even when an index exists.")(command)


def file_option(command):
    return click.option("--file", "lines_file", type=click.File("r", encoding="utf-8"),
                        help="Read one per line ('-' for stdin).")(command)


def arguments_and_lines(arguments, lines_file, what: str) -> list[str]:
    """The command's arguments, then the non-empty lines of --file; a usage error if none."""
    texts = list(arguments) + ([line.strip() for line in lines_file if line.strip()] if lines_file else [])
    if not texts:
        raise click.UsageError(f"give at least one {what}, or --file")
    return texts


def version_option(what: str = "Query"):
    return click.option("--version", "version", type=int,
                        help=f"{what} this version instead of the current one.")


def user_errors(command):
    """Turn the library's named exceptions, and the machine's faults, into `Error: ...` lines."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SimdexError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            if e.errno not in MACHINE_ERRNOS:
                raise
            raise click.ClickException(f"{e.filename or 'simdex'}: {e.strerror}") from None
    return wrapper


def open_store(store_path, version=None):
    from .engine.store import Store
    return Store.open(store_path, version=version)


def show_index_follow(follow) -> None:
    """What became of the store's index when a command made a new version current."""
    if follow is not None:
        click.echo(follow.message, err=True)


def show_notice(store) -> None:
    """One line on stderr when a query searched exactly although the store has an index."""
    if store.notice:
        click.echo(f"notice: {store.notice}", err=True)


def output(as_json: bool, results, table) -> None:
    """Print results: each as one JSON line (`to_json` of a result object, or a dict as it is),
    or as the lines `table(result)` returns."""
    for result in results if isinstance(results, list) else [results]:
        if as_json:
            record = result if isinstance(result, dict) else to_json(result)
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            lines = table(result)
            for line in [lines] if isinstance(lines, str) else lines:
                click.echo(line)


def output_ranked(as_json: bool, title: str, answers, key: str = "word", oov: dict | None = None) -> None:
    """A query's (key, score) answers: JSON lines `query, rank, word, score` (and `oov`), or a
    small table."""
    records = [{**record, **(oov or {})} for record in ranked(title, answers, key)]
    if as_json:
        output(True, records, None)
        return
    width = max((len(word) for word, _ in answers), default=4)
    click.echo(title + (f"  ({', '.join(oov['oov_words'])}: from subwords)" if oov else ""))
    output(False, records, lambda r: f"{r['rank']:4d}  {r[key]:<{width}}  {r['score']:.4f}")


class SimdexGroup(click.Group):
    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except BrokenPipeError:
            # the reader went away (`simdex neighbors ... | head -1`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)


# -- commands -------------------------------------------------------------------------------------

@click.group(cls=SimdexGroup)
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
@click.option("--format", "fmt", type=click.Choice(["auto", "glove", "word2vec", "word2vec-binary", "fasttext",
                                                   "fasttext-bin"]),
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
    .zip, or a fastText .bin model (its subwords kept: words it never saw get vectors). Without
    SOURCE, the packaged GloVe 6B 50d vectors are read.

    \b
    Examples:
        simdex ingest                       # packaged GloVe 6B 50d
        simdex ingest glove.6B.300d.txt
        simdex ingest wiki.en.vec.gz --limit 200000 --on-error skip
        simdex ingest cc.en.300.bin                 # then: simdex neighbors excelent
    """
    from .engine.store import Store
    from .engine.words.ingest import ingest as run_ingest

    with Store.create(store_path) as store:
        result = run_ingest(store, source, format=fmt, member=member, limit=limit, on_error=on_error,
                            progress=PROGRESS)
    if result.skipped:
        click.echo(f"skipped {result.skipped} bad line(s), first: {', '.join(result.first_skipped)}", err=True)
    show_index_follow(result.index)
    output(as_json, result, lambda r: f"version {r.version}: {r.count:,} vectors of dimension {r.dim} ({r.format}) "
                                      f"in {r.seconds:.2f}s; {r.duplicates} duplicate(s), {r.skipped} skipped")


@cli.command()
@store_options
@user_errors
def info(store_path, as_json):
    """Show the store's versions, the current one and the index."""
    with open_store(store_path) as store:
        record = store.info()
    output(as_json, record, info_table)


def info_table(record) -> list[str]:
    lines = [f"store    {record['store']}", f"current  {record['current']}"]
    for v in record["versions"]:
        mark = "*" if v["version"] == record["current"] else " "
        size = f"{v['bytes'] / 2**20:,.1f} MiB" if v["bytes"] is not None else "missing"
        parent = f"  parent {v['parent']}" if v["parent"] else ""
        lines.append(f"{mark} v{v['version']:<3} {v['kind']:<9} {v['count']:>10,} x {v['dim']:<4} {size:>10}  "
                     f"{v['created']}  {v['source']}{parent}")
    index = record["index"]
    lines.append("index    none" if index is None else
                 f"index    {index['kind']} ({index['factory']}) on v{index['version']}, recall@10 "
                 f"{index['recall_at_10']:.4f}" + (f", {index['bytes'] / 2**20:,.1f} MiB" if index["bytes"] else "")
                 + (f"  (stale: the current version is v{record['current']})" if index.get("stale") else ""))
    return lines


@cli.command()
@click.argument("version", type=int)
@store_options
@user_errors
def use(version, store_path, as_json):
    """Make VERSION the current version (queries, indexes and exports follow it)."""
    with open_store(store_path) as store:
        chosen = store.set_current(version)
    output(as_json, {"current": chosen.version},
           lambda _: f"version {chosen.version} is current ({chosen.count:,} x {chosen.dim}, {chosen.source})")


@cli.command()
@store_options
@user_errors
def versions(store_path, as_json):
    """List the store's versions with their lineage (parent) and metrics."""
    with open_store(store_path) as store:
        current = store.current_version()
        records = [{**v.summary(), "current": v.version == current, "metrics": v.metrics} for v in store.versions()]

    def table(r):
        parent = f"from v{r['parent']}" if r["parent"] else "root"
        return (f"{'*' if r['current'] else ' '} v{r['version']:<3} {r['kind']:<9} {r['count']:>10,} x {r['dim']:<4} "
                f"{parent:<8} {r['created']}  {r['source']}")
    output(as_json, records, table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line on stdout.")
@user_errors
def stores(as_json):
    """List the named stores in the per-user data directory (~/.local/share/simdex)."""
    from .engine.backends.local import list_stores
    from .engine.store import data_dir

    found = list_stores(data_dir())
    if not found and not as_json:
        click.echo(f"no stores in {data_dir()} (make one with `simdex ingest` or `simdex encode FILE --store NAME`)",
                   err=True)

    def table(r):
        size = f"{r['bytes'] / 2**20:,.1f} MiB"
        shape = f"{r['count']:,} x {r['dim']}" if r["count"] is not None else "empty"
        return (f"{r['name']:<16} {r['kind'] or '-':<9} v{r['current'] or '-':<4} {shape:>16} {size:>11}  "
                f"index {r['index'] or 'none'}")
    output(as_json, found, table)


@cli.command()
@click.argument("input_path", metavar="INPUT")
@click.option("--model", help="A local model folder or a name in the Hugging Face cache "
                              "[default: the packaged all-MiniLM-L6-v2].")
@click.option("--pooling", type=click.Choice(["mean", "cls", "pooler"]),
              help="[default: the model's sentence-transformers pooling, else mean]")
@click.option("--max-length", type=click.IntRange(1, 512), help="Tokens per text; longer texts are cut and counted.")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Texts per batch [default: up to 64 texts, fewer when long].")
@click.option("--column", help="The column (.csv/.tsv) or field (.jsonl) holding the text [default: text].")
@click.option("--id-column", help="A column or field holding each text's own id.")
@click.option("--fields", help="Columns or fields to keep with each text, for `search --where`: "
                               "source,label,year (types inferred) or source:text,year:int,score:real.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="[default: cuda when there is one]")
@click.option("--quantize", type=click.Choice(["none", "bf16", "int8"]),
              help="int8: matrix products in int8, faster, slightly lossy; bf16: bfloat16 on CPUs "
                   "with AMX / AVX512-BF16 [default: none].")
@store_options
@user_errors
def encode(input_path, model, pooling, max_length, batch_size, column, id_column, fields, device, quantize,
           store_path, as_json):
    """Encode the texts of INPUT into a new version of a sentence store.

    INPUT is .txt (one text per line), .csv / .tsv (a column), .jsonl (a field), optionally
    .gz, or - for stdin. Texts already stored are not encoded again; an interrupted run resumes.

    \b
    Examples:
        simdex encode reviews.txt --store reviews
        simdex encode reviews.csv --column text --id-column review_id --store reviews
        simdex encode reviews.csv --fields source,label --store reviews
        simdex search "a gripping thriller" --where "source = 'imdb'" --store reviews
    """
    from .engine.sentences.encode import encode_input
    from .engine.store import Store

    with Store.create(store_path) as store:
        result = encode_input(store, input_path, model=model, pooling=pooling, max_length=max_length,
                              quantize=quantize, device=device, column=column, id_column=id_column,
                              fields=fields, batch_size=batch_size, progress=PROGRESS)
        if result.resumed:
            click.echo(f"resumed: {result.resumed:,} texts encoded by an interrupted run were kept", err=True)
        show_index_follow(result.index)
    output(as_json, result, lambda r: (
        f"version {r.version}: {r.count:,} texts ({r.added:,} new, {r.duplicates:,} duplicate(s), {r.skipped:,} "
        f"empty skipped, {r.truncated:,} truncated) in {r.seconds:.2f}s; model loaded in {r.load_seconds:.2f}s"
        if r.version is not None else "no texts to store"))


def where_option(command):
    return click.option("--where", help="Only texts whose fields pass this filter, e.g. \"source = 'imdb' AND "
                                        "label IN (0, 1)\" (fields kept by `encode --fields`).")(command)


@cli.command()
@click.argument("texts", nargs=-1)
@k_option
@exact_option
@where_option
@click.option("--mode", type=click.Choice(["vector", "keyword", "hybrid"]), default="vector", show_default=True,
              help="Nearest encodings, full-text matches (BM25), or both fused by reciprocal rank.")
@click.option("--vector-weight", type=click.FloatRange(min=0), default=VECTOR_WEIGHT, show_default=True,
              help="hybrid: the weight of the vector list's ranks.")
@click.option("--keyword-weight", type=click.FloatRange(min=0), default=KEYWORD_WEIGHT, show_default=True,
              help="hybrid: the weight of the keyword list's ranks (chosen on validation queries).")
@click.option("--rrf-k", type=click.FloatRange(min=0), default=RRF_K, show_default=True,
              help="hybrid: reciprocal rank fusion's constant (a hit scores weight / (rrf_k + rank)).")
@file_option
@version_option()
@store_options
@user_errors
def search(texts, k, exact, where, mode, vector_weight, keyword_weight, rrf_k, lines_file, version, store_path,
           as_json):
    """The stored texts best matching each TEXT: nearest by encoding (the store's own model),
    by their words (--mode keyword: "quoted phrases", +required, -excluded), or both.

    \b
    Examples:
        simdex search "a gripping thriller" --store reviews
        simdex search "a gripping thriller" --where "source = 'imdb' AND label = 1" --store reviews
        simdex search '"gripping thriller" +hitchcock' --mode hybrid --store reviews
        simdex search --file queries.txt -k 5 --json --store reviews
    """
    texts = arguments_and_lines(texts, lines_file, "TEXT")
    with open_store(store_path, version) as store:
        answers = store.hits(texts, k=k, exact=exact, where=where, mode=mode, vector_weight=vector_weight,
                             keyword_weight=keyword_weight, rrf_k=rrf_k)
        show_notice(store)
    for text, hits in zip(texts, answers):
        records = [hit.record(text, rank) for rank, hit in enumerate(hits, 1)]
        if as_json:
            output(True, records, None)
            continue
        click.echo(text)
        output(False, records, hit_line)


def hit_line(r: dict) -> str:
    found = f" ({'+'.join(r['lists'])})" if r.get("lists") else ""
    return f"{r['rank']:4d}  {r['score']:.4f}{found}  [{r['id']}] {shorten(r['text'])}"


def shorten(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


@cli.command()
@click.argument("queries", nargs=-1)
@k_option
@click.option("--restrict", type=click.IntRange(min=1), help="Search only the first N words (the most frequent).")
@exact_option
@where_option
@file_option
@version_option()
@store_options
@user_errors
def neighbors(queries, k, restrict, exact, where, lines_file, version, store_path, as_json):
    """Nearest words to each QUERY: a word or an expression like "king - man + woman". In a
    sentence store, the nearest texts to a stored text (--where filters them on their fields).

    \b
    Examples:
        simdex neighbors frog
        simdex neighbors "king - man + woman" -k 5
        simdex neighbors --file queries.txt --json
    """
    texts = arguments_and_lines(queries, lines_file, "QUERY")
    with open_store(store_path, version) as store:
        if len(texts) == 1:
            answers = [store.neighbors(texts[0], k=k, restrict=restrict, exact=exact, where=where)]
        else:
            answers = store.neighbors_many(texts, k=k, restrict=restrict, exact=exact, where=where)
        show_notice(store)
        oov = [oov_fields(store, text) if store.version.kind == "words" else {} for text in texts]
    for text, answer, extra in zip(texts, answers, oov):
        output_ranked(as_json, text, answer, oov=extra)


@cli.command()
@click.argument("a")
@click.argument("b")
@click.argument("c")
@k_option
@click.option("--method", type=click.Choice(["add", "mul"]), default="add", show_default=True,
              help="3CosAdd (most_similar) or 3CosMul (most_similar_cosmul).")
@click.option("--restrict", type=click.IntRange(min=1), help="Answer only from the first N words.")
@exact_option
@version_option()
@store_options
@user_errors
def analogy(a, b, c, k, method, restrict, exact, version, store_path, as_json):
    """D such that A is to B as C is to D: `simdex analogy man king woman` gives queen."""
    with open_store(store_path, version) as store:
        answers = store.analogy(a, b, c, k=k, method=method, restrict=restrict, exact=exact)
        show_notice(store)
        oov = oov_fields(store, [a, b, c])
    output_ranked(as_json, f"{a} : {b} :: {c} : ?", answers, oov=oov)


@cli.command()
@click.argument("word1")
@click.argument("word2")
@version_option()
@store_options
@user_errors
def similarity(word1, word2, version, store_path, as_json):
    """Cosine similarity of two words, or of two sets of words written "a + b" (their means,
    as gensim's n_similarity).

    \b
    Examples:
        simdex similarity cat dog
        simdex similarity "sushi + shop" "japanese + restaurant"
    """
    with open_store(store_path, version) as store:
        score = store.similarity(word1, word2)
        oov = oov_fields(store, [*word1.split(" + "), *word2.split(" + ")]) if store.version.kind == "words" else {}
    output(as_json, {"a": word1, "b": word2, "score": round(score, 6), **oov},
           lambda r: f"{word1}  {word2}  {score:.4f}" + (f"  ({', '.join(oov['oov_words'])}: from subwords)"
                                                         if oov else ""))


@cli.command(name="doesnt-match")
@click.argument("words", nargs=-1, required=True)
@version_option()
@store_options
@user_errors
def doesnt_match(words, version, store_path, as_json):
    """The word that fits least with the others (gensim's doesnt_match): the one furthest from
    the mean of all of them. `simdex doesnt-match breakfast cereal dinner lunch` gives cereal."""
    with open_store(store_path, version) as store:
        word, score = store.doesnt_match(list(words))
        oov = oov_fields(store, list(words))
    output(as_json, {"words": list(words), "word": word, "score": round(score, 6), **oov},
           lambda r: f"{word}  {score:.4f}")


@cli.command()
@click.argument("word1")
@click.argument("word2")
@version_option()
@store_options
@user_errors
def rank(word1, word2, version, store_path, as_json):
    """Where WORD2 falls among WORD1's neighbours (gensim's rank): 1 means it is the nearest."""
    with open_store(store_path, version) as store:
        position = store.rank(word1, word2)
        oov = oov_fields(store, [word1, word2])
    output(as_json, {"a": word1, "b": word2, "rank": position, **oov}, lambda r: f"{word1}  {word2}  {position}")


@cli.command()
@click.argument("out", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["glove", "word2vec", "word2vec-binary", "npy", "fasttext-bin"]),
              default="glove", show_default=True)
@click.option("--scale", type=click.Choice(["unit", "original"]), default="unit", show_default=True,
              help="Unit-length rows (as stored) or the source's lengths (from the stored norms).")
@version_option("Export")
@store_options
@user_errors
def export(out, fmt, scale, version, store_path, as_json):
    """Write a version's vectors to OUT (npy also writes OUT.vocab.txt)."""
    from .engine.words.export import export as run_export

    with open_store(store_path, version) as store:
        record = run_export(store, out, format=fmt, scale=scale)
    output(as_json, record, lambda r: f"wrote {r['count']:,} vectors of dimension {r['dim']} to {r['path']}")



# -- training -------------------------------------------------------------------------------------

@cli.group(name="train")
def train_group():
    """Fine-tune a store's embeddings through a task, then re-index."""


def both(words, sentences) -> str:
    """The help's default of an option whose default depends on the store's kind."""
    return f"[default: {words} on word stores, {sentences} on sentence stores]"


@train_group.command(name="sentiment")
@click.argument("data", required=False, type=click.Path())
@click.option("--dataset", help="A packaged data set instead of DATA: imdb (25,000 reviews) or rotten_tomatoes "
                                "(8,530 sentences).")
@click.option("--text-column", default="text", show_default=True, help="DATA's column (or field) of texts.")
@click.option("--label-column", default="label", show_default=True, help="DATA's column of labels (two classes).")
@click.option("--freeze/--fine-tune", default=None,
              help="Train the classifier only on fixed embeddings (the baseline; no new version), or fine-tune "
                   "the embeddings [default: fine-tune].")
@click.option("--compare-freeze", is_flag=True, help="Report the frozen baseline beside the fine-tuned run.")
@click.option("--epochs", type=click.IntRange(min=1), help="At most; training stops early when validation accuracy "
                                                           "stops improving. " + both(TRAINING.epochs, ENCODING.epochs))
@click.option("--lr", type=float, help="The classifier's (or the encoder's) learning rate. "
                                       + both(TRAINING.lr, ENCODING.lr))
@click.option("--batch-size", type=click.IntRange(min=1), help=both(TRAINING.batch_size, ENCODING.batch_size))
@click.option("--val-split", type=float, help=f"Share held out for validation [default: {TRAINING.val_split}].")
@click.option("--seed", type=int, help=f"[default: {TRAINING.seed}]")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="[default: cuda when there is one]")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint.")
@click.option("--model", help=f"Word stores: {', '.join(MODELS)}: bag (mean of embeddings -> Linear -> ReLU -> "
                              f"Linear), bilstm, or cnn (Kim 2014) [default: {TRAINING.model}].")
@click.option("--init", help=f"Word stores: store (start from the current version) or random (custom embeddings "
                             f"from scratch) [default: {TRAINING.init}].")
@click.option("--dim", type=click.IntRange(min=1), help="With --init random: the embeddings' dimension [default: 50].")
@click.option("--embedding-lr", type=float,
              help=f"Word stores: the vectors' own learning rate [default: {TRAINING.embedding_lr}].")
@click.option("--tie", type=click.FloatRange(min=0),
              help=f"Word stores: how strongly each trained row is pulled back to its original vector (L2-SP; "
                   f"0: free) [default: {TRAINING.tie}].")
@click.option("--ngrams", is_flag=True, default=None,
              help="Word stores, bag: hashed word and bigram features with naive-Bayes ratios beside the vectors.")
@click.option("--add-new-words", is_flag=True, default=None,
              help="Word stores: words of the data missing from the store join its vocabulary.")
@click.option("--polarity/--no-polarity", default=None,
              help="Word stores: the polarity step after training [default: on].")
@click.option("--polarity-strength", type=click.FloatRange(min=0),
              help="Word stores: the polarity step's strength [default: chosen on polar words of the reviews held "
                   "out of its probe].")
@click.option("--sentence-head", is_flag=True, default=None,
              help="Word stores: also fit a logistic head on MiniLM encodings of the texts and report its "
                   "accuracy, and its average with the word model's, in fields of their own.")
@click.option("--max-length", type=click.IntRange(1, 512),
              help="Sentence stores: tokens a text is cut to while training [default: the encoder's].")
@click.option("--contrastive", type=float,
              help="Sentence stores: weight of a supervised contrastive term beside the cross-entropy, drawing "
                   f"texts of one label together (0: cross-entropy only) [default: {ENCODING.contrastive}].")
@click.option("--soup", type=click.IntRange(min=1),
              help="Sentence stores: runs from one start, differing in batch order and dropout, averaged weight by "
                   f"weight into the model (a model soup; 1: a single run) [default: {ENCODING.soup}].")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
              help="Sentence stores: auto is bfloat16 autocast on CUDA where it has it, float32 elsewhere.")
@store_options
@user_errors
def train_sentiment_command(data, dataset, text_column, label_column, freeze, compare_freeze, resume, store_path,
                            as_json, **options):
    """Fine-tune the store's embeddings on labelled texts; they become a new version, re-indexed.

    DATA is a .csv, .tsv or .jsonl of texts with two-class labels (0/1, neg/pos, ...). On a word
    store the word vectors are fine-tuned through a classifier; on a sentence store its encoder
    is, and every text is re-encoded. The new version is current, its index rebuilt and a report
    of what moved is in its metrics; `simdex use PARENT` goes back. The classifier is kept for
    `simdex predict`.

    \b
    Examples:
        simdex train sentiment --dataset imdb
        simdex train sentiment --dataset rotten_tomatoes --model cnn --compare-freeze
        simdex train sentiment --dataset rotten_tomatoes --store reviews     # a sentence store
        simdex train sentiment reviews.csv --text-column review --label-column stars_binary
    """
    from .engine.training.config import config_for
    from .engine.training.train import train_sentiment

    with open_store(store_path) as store:
        kind = store.version.kind
        config = config_for(kind, freeze=freeze, **options)
        runs = [config]
        if compare_freeze:
            if resume or getattr(config, "init", "store") == "random":
                raise click.ClickException("--compare-freeze is for a fresh run from the store's vectors "
                                           "(not with --resume or --init random)")
            if kind == "words":  # (a sentence store's run measures its frozen baseline anyway)
                runs = [replace(config, freeze=True), replace(config, freeze=False)]
        results = []
        for run in runs:
            if len(runs) > 1:
                click.echo(f"-- {'frozen' if run.freeze else 'fine-tuned'}", err=True)
            result = train_sentiment(store, data, dataset=dataset, text_column=text_column, label_column=label_column,
                                     config=run, resume=resume, progress=PROGRESS)
            show_index_follow(result.index)
            results.append(result)
    if compare_freeze and not as_json:
        frozen, tuned = (results if len(results) == 2 else [None, results[0]])
        if frozen:
            rows = [("val_accuracy", frozen.val_accuracy, tuned.val_accuracy), ("val_f1", frozen.val_f1, tuned.val_f1),
                    ("train_seconds", frozen.train_seconds, tuned.train_seconds)]
        else:
            rows = [("val_accuracy", tuned.frozen_accuracy, tuned.val_accuracy),
                    ("val_f1", tuned.frozen_f1, tuned.val_f1)]
        click.echo(f"{'':<14}{'frozen':>10}{'fine-tuned':>12}")
        for name, a, b in rows:
            click.echo(f"{name:<14}{a:10.4f}{b:12.4f}")
    output(as_json, results, train_table)


def train_table(r) -> list[str]:
    lines = [f"{r.model} on {r.data}: validation accuracy {r.val_accuracy:.4f}, F1 {r.val_f1:.4f} "
             f"({r.train_examples:,} training / {r.val_examples:,} validation texts"
             + (f", best epoch {r.best_epoch} of {r.epochs}, {r.train_seconds:.1f}s)" if r.best_epoch else
                f", {r.train_seconds:.1f}s)" if r.epochs else ")")]
    if r.soup_members:
        lines.append(f"a soup of {len(r.soup_members)} runs averaged into one model; each alone: validation accuracy "
                     + ", ".join(f"{m['val_accuracy']:.4f} (best epoch {m['best_epoch']} of {m['epochs']})"
                                 for m in r.soup_members))
    if r.ngrams:
        lines.append("with the n-gram features beside the word vectors (--ngrams)")
    if r.frozen_accuracy is not None and not r.freeze:
        lines.append(f"frozen baseline (a head on the fixed encodings): accuracy {r.frozen_accuracy:.4f}, "
                     f"F1 {r.frozen_f1:.4f}")
    if r.sentence_head_accuracy is not None:
        lines.append(f"sentence head (--sentence-head, MiniLM encodings; not the word model): accuracy "
                     f"{r.sentence_head_accuracy:.4f}; averaged with the word model {r.blended_accuracy:.4f}")
    if r.note:
        lines.append(r.note)
    if r.version is not None:
        what = (f"the fine-tuned vectors of {r.vocabulary - r.new_words:,} stored words"
                + (f" and {r.new_words:,} new ones" if r.added_new_words else "") if r.kind == "words" else
                f"every text re-encoded with the fine-tuned encoder ({r.encoder})")
        lines.append(f"version {r.version} (from v{r.parent}) is current: {what}")
    if r.kind == "words" and r.new_words and not r.added_new_words and not r.freeze:
        lines.append(f"{r.new_words:,} words of the data are not in the store: trained for the classifier only "
                     f"(--add-new-words adds them)")
    return lines + report_lines(r.report or {}, r.parent)


def stages(values: dict) -> str:
    """{stage: figure} as "parent 0.7303 -> trained 0.7310 -> polarity 0.7650"."""
    return " -> ".join(f"{stage} {value:.4f}" for stage, value in values.items() if value is not None)


def report_lines(report: dict, parent: int) -> list[str]:
    """The training report, readable (the whole of it is in --json and the version's metrics)."""
    lines = []
    step = report.get("polarity_step") or {}
    if "strength" in step:
        lines.append(f"polarity step: strength {step['strength']} (chosen on {step['probe_held_out_words']:,} polar "
                     f"words of the reviews held out of the probe, which agrees with "
                     f"{step['probe_held_out_agreement']:.0%} of them); {step['scored_words']:,} words scored")
    elif "note" in step:
        lines.append(f"polarity step: {step['note']}")
    for name, shares in (report.get("lexicons") or {}).items():
        for group, label in (("training_words", "words of the training split"), ("all_words", "all")):
            lines.append(f"{name.upper()} same-polarity share of 10 neighbours, {label} "
                         f"({shares[group + '_count']:,}): {stages(shares[group])}")
    knowledge = report.get("knowledge") or {}
    for measure in knowledge.get("parent", {}):
        path = stages({stage: values[measure] for stage, values in knowledge.items()})
        if path:
            lines.append(f"{measure}{' (3CosAdd, restrict 30,000)' if measure == 'analogies' else ''}: {path}")
    drift = report.get("drift")
    if drift:
        lines.append(f"drift over the first {drift['restrict']:,} words: mean cosine to v{parent} "
                     f"{drift['mean_cosine_to_parent']:.4f}; neighbour overlap@10 {drift['mean_overlap_at_10']:.2f}")
        lines.append("  moved most: " + ", ".join(f"{m['word']} ({m['cosine']:.2f})" for m in drift["most_moved"]))
        lines.append("  overlap@10: " + ", ".join(f"{w} {o:.1f}" for w, o in drift["overlap_at_10"].items()))
        for word, pair in drift["neighbours"].items():
            lines.append(f"  {word}: {', '.join(pair['before'])}  ->  {', '.join(pair['after'])}")
    agreement = report.get("label_agreement_at_10")
    if agreement:
        lines.append(f"held-out texts' 10 nearest training texts sharing their label: {agreement['before']:.4f} -> "
                     f"{agreement['after']:.4f}")
        lines.append(f"the store's vectors: mean cosine to v{parent} {report['mean_cosine_to_parent']:.4f}")
        for sample in report["neighbours"]:
            lines.append(f"  [{sample['label']}] {shorten(sample['text'], 70)}")
            for when in ("before", "after"):
                lines.append(f"     {when:<6} " + " | ".join(f"[{n['label']}] {shorten(n['text'], 30)}"
                                                            for n in sample[when]))
    return lines


@cli.command()
@click.argument("texts", nargs=-1)
@file_option
@version_option("Use the classifier of")
@store_options
@user_errors
def predict(texts, lines_file, version, store_path, as_json):
    """Label texts with the last classifier trained on the current version.

    \b
    Examples:
        simdex predict "a gripping, beautifully acted thriller" "a dull mess"
        simdex predict --file reviews.txt --json
    """
    from .engine.training.predict import predict as predict_texts

    texts = arguments_and_lines(texts, lines_file, "TEXT")
    with open_store(store_path, version) as store:
        predictions = predict_texts(store, texts)
    output(as_json, predictions, lambda p: f"{p.label:<9} {p.probability:.4f}  {shorten(p.text, 80)}")


# -- serving --------------------------------------------------------------------------------------

@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on; 0.0.0.0 serves every network the machine is on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--store", "store_path", envvar="SIMDEX_STORE",
              help="A store path (with a /), or a bare name [env SIMDEX_STORE; default: default].")
@user_errors
def serve(host, port, store_path):
    """Serve the store read-only: the explorer page at / and a JSON API at /api/...

    \b
    Examples:
        simdex serve                          # http://127.0.0.1:8000/#q=frog
        simdex serve --store reviews --port 8001
    """
    import uvicorn

    from .engine.store import Store
    from .web.app import create_app

    Store.open(store_path, read_only=True).close()  # a missing or damaged store: one Error line, now
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"notice: listening on {host}: the store is readable from other machines", err=True)
    click.echo(f"serving {store_path or 'default'} at http://{host}:{port}/  (Ctrl-C stops)", err=True)
    uvicorn.run(create_app(store_path), host=host, port=port, log_level="warning")


# -- moving stores between backends ---------------------------------------------------------------

def transfer(source, destination, as_json) -> None:
    from .engine.backends.transfer import copy_version

    result = copy_version(source, destination, progress=PROGRESS)
    show_index_follow(result.index)
    output(as_json, result, lambda r: f"version {r.version} at {r.destination}: {r.count:,} x {r.dim} from "
                                      f"{r.source} in {r.seconds:.1f}s")


@cli.command()
@click.option("--to", "address", required=True,
              help="milvus://HOST:PORT/NAME (token: env SIMDEX_MILVUS_TOKEN) or milvus-lite://PATH.db/NAME")
@store_options
@user_errors
def push(address, store_path, as_json):
    """Copy the store's current version to ADDRESS (Milvus), where it becomes current once indexed.

    \b
    Examples:
        simdex push --to milvus://localhost:19530/glove
        simdex push --to milvus-lite://./stores.db/glove
        simdex neighbors frog --store milvus://localhost:19530/glove
    """
    from .engine.store import Store

    with open_store(store_path) as source, Store.create(address) as destination:
        transfer(source, destination, as_json)


@cli.command()
@click.option("--from", "address", required=True, help="The Milvus store to copy (as for push).")
@store_options
@user_errors
def pull(address, store_path, as_json):
    """Copy ADDRESS's current version into the local store (--store), as a new current version."""
    from .engine.store import Store

    with Store.open(address) as source, Store.create(store_path) as destination:
        transfer(source, destination, as_json)

# -- indexes ----------------------------------------------------------------------------------------

@cli.group(name="index")
def index_group():
    """FAISS indexes: built over the current version, tuned to a measured recall."""


@index_group.command(name="build")
@click.option("--kind", default="hnsw", show_default=True,
              help="flat, hnsw, ivf, ivfpq, or a FAISS index_factory string such as 'IVF256,SQ8'.")
@click.option("--target-recall", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True,
              help="The recall@10 (against exact search) that the search parameters are tuned to.")
@click.option("--if-stale", is_flag=True, help="Build only if there is no index for the current version.")
@store_options
@user_errors
def index_build(kind, target_recall, if_stale, store_path, as_json):
    """Build an index over the current version; it replaces the store's index.

    \b
    Examples:
        simdex index build                         # HNSW, tuned to recall@10 >= 0.95
        simdex index build --kind ivfpq --target-recall 0.9
        simdex index build --kind "IVF1024,SQ8"
    """
    from .indexes import build_index

    with open_store(store_path) as store:
        state = store.index_state()
        if if_stale and state is not None and not state["stale"]:
            click.echo(f"the {state['kind']} index is up to date with version {state['version']}", err=True)
            return
        result = build_index(store, kind=kind, target_recall=target_recall, progress=PROGRESS)
    for note in result.notes:
        click.echo(f"warning: {note}", err=True)
    shown = {name: value for name, value in result.params.items()
             if name not in ("restricted", "filtered", "target_recall")}
    output(as_json, result, lambda r: f"{r.kind} index ({r.factory}) over version {r.version}: recall@10 "
                                      f"{r.recall_at_10:.4f} with {shown}, {r.bytes / 2**20:,.1f} MiB, "
                                      f"{r.seconds:.1f}s")


# -- evaluation -------------------------------------------------------------------------------------

def oov_option(command):
    return click.option("--oov", is_flag=True,
                        help="A word outside the vocabulary takes its subword vector (a fastText store) instead "
                             "of its question or pair being skipped (gensim's protocol skips them).")(command)


def eval_options(command):
    """--restrict, --method, --exact and --oov, shared by the evaluation commands."""
    command = oov_option(exact_option(command))
    command = click.option("--method", type=click.Choice(["add", "mul"]), default="add", show_default=True,
                           help="3CosAdd or 3CosMul.")(command)
    return click.option("--restrict", type=click.IntRange(min=1), default=300_000, show_default=True,
                        help="The vocabulary is the first N words.")(command)


def on_error_option(command):
    return click.option("--on-error", type=click.Choice(["fail", "skip"]), default="fail", show_default=True,
                        help="On a malformed line: stop, or skip it and count it.")(command)


@cli.group(name="eval")
def eval_group():
    """Analogy and word-similarity benchmarks (gensim's protocol and numbers)."""


def result_table(result) -> list[str]:
    from .engine.words.evaluate import AnalogyResult

    if not isinstance(result, AnalogyResult):
        return [f"{result.name}: spearman {result.spearman:.4f}  pearson {result.pearson:.4f}  "
                f"pairs {result.pairs}  oov {100 * result.oov:.1f}%"]
    label = "3CosAdd" if result.method == "add" else "3CosMul"
    lines = [f"{result.name} ({label}, restrict {result.restrict:,}, {result.search}): accuracy "
             f"{100 * result.accuracy:.2f}% ({result.correct:,}/{result.questions:,}), "
             f"{result.skipped:,} skipped, {result.seconds:.2f}s"]
    width = max([len(s.name) for s in result.sections] + [9])
    for section in [result.semantic, result.syntactic] + result.sections:
        lines.append(f"  {section.name:<{width}}  {100 * section.accuracy:6.2f}%  "
                     f"({section.correct:,}/{section.questions:,})")
    return lines


@eval_group.command(name="analogies")
@click.argument("file", required=False, type=click.Path())
@eval_options
@on_error_option
@version_option("Evaluate")
@store_options
@user_errors
def eval_analogies(file, restrict, method, exact, oov, on_error, version, store_path, as_json):
    """Accuracy on an analogy set (questions-words.txt format; default: the bundled Google set)."""
    from .engine.words.evaluate import evaluate_analogies

    with open_store(store_path, version) as store:
        result = evaluate_analogies(store, file, restrict=restrict, method=method, on_error=on_error,
                                    exact=exact, oov=oov, progress=PROGRESS)
        show_notice(store)
    output(as_json, result, result_table)


@eval_group.command(name="pairs")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--restrict", type=click.IntRange(min=1), default=300_000, show_default=True,
              help="The vocabulary is the first N words.")
@on_error_option
@oov_option
@version_option("Evaluate")
@store_options
@user_errors
def eval_pairs(files, restrict, on_error, oov, version, store_path, as_json):
    """Spearman and Pearson correlation with human similarity scores (default: WordSim-353, SimLex-999)."""
    from .engine import packaged
    from .engine.words.evaluate import evaluate_pairs

    with open_store(store_path, version) as store:
        results = [evaluate_pairs(store, path, restrict=restrict, on_error=on_error, oov=oov)
                   for path in files or packaged.PAIR_SETS.values()]
    output(as_json, results, result_table)


@eval_group.command(name="all")
@eval_options
@version_option("Evaluate")
@store_options
@user_errors
def eval_all(restrict, method, exact, oov, version, store_path, as_json):
    """Every bundled benchmark: the Google analogies, WordSim-353 and SimLex-999."""
    from .engine.words.evaluate import evaluate_all

    with open_store(store_path, version) as store:
        results = evaluate_all(store, restrict=restrict, method=method, exact=exact, oov=oov, progress=PROGRESS)
        show_notice(store)
    output(as_json, results, result_table)


@eval_group.command(name="compare")
@click.argument("first", type=int)
@click.argument("second", type=int)
@eval_options
@store_options
@user_errors
def eval_compare(first, second, restrict, method, exact, oov, store_path, as_json):
    """Each bundled benchmark's score for versions FIRST and SECOND, and the difference.

    Both are searched the same way: through their own indexes when both have one, else both
    exactly (and --exact makes both exact)."""
    from .engine.words.evaluate import compare

    with open_store(store_path, first) as a, open_store(store_path, second) as b:
        comparison = compare(a, b, restrict=restrict, method=method, exact=exact, oov=oov, progress=PROGRESS)
    for note in comparison.notes:
        click.echo(f"notice: {note}", err=True)
    if as_json:
        output(True, [{**row, "search_v1": comparison.search_v1, "search_v2": comparison.search_v2}
                      for row in comparison.rows], None)
        return
    width = max(len(row["metric"]) for row in comparison.rows)
    click.echo(f"searched: v{first} {comparison.search_v1}; v{second} {comparison.search_v2}")
    click.echo(f"{'metric':<{width}}  {'v' + str(first):>8}  {'v' + str(second):>8}  {'diff':>8}")
    output(False, comparison.rows,
           lambda r: f"{r['metric']:<{width}}  {r['v1']:8.4f}  {r['v2']:8.4f}  {r['diff']:+8.4f}")

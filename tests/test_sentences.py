"""Sentence stores: the real packaged all-MiniLM-L6-v2, checked against sentence-transformers and
a direct transformers computation; incremental, deduplicated, resumable encodes; search; named
stores; and every bad input as one clear error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from simdex.cli import cli
from simdex.engine import BadModel, BadOption, Store, WrongKind, packaged
from simdex.engine.sentences.encode import encode_input
from simdex.engine.sentences.model import Encoder, resolve_model
from simdex.engine.words.ingest import ingest

ROOT = Path(__file__).resolve().parent.parent
MODEL = resolve_model(None).path
SENTENCES = ["a gripping thriller with a great cast", "the worst movie I have ever seen",
             "lovely and touching", "an utterly forgettable sequel", "Un film magnifique.",
             "it 's a charming and often affecting journey .", "x"]


@pytest.fixture(scope="module")
def encoder():
    return Encoder.load()


@pytest.fixture(scope="module")
def rt_sentences():
    texts, _ = packaged.reviews("rotten_tomatoes")
    return texts


def write_lines(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def invoke(*args, store=None, input=None):
    extra = ["--store", str(store)] if store is not None else []
    return CliRunner().invoke(cli, [*args, *extra], input=input)


def test_parity_with_sentence_transformers(encoder, rt_sentences):
    from sentence_transformers import SentenceTransformer

    texts = SENTENCES + rt_sentences[:200] + ["word " * 400]  # one longer than the 256-token limit
    reference = SentenceTransformer(str(MODEL), device="cpu").encode(texts, batch_size=32, normalize_embeddings=True)
    ours, truncated = encoder.encode(texts)
    assert truncated == 1
    cosines = np.sum(ours * reference, axis=1)
    assert cosines.min() >= 0.9999, cosines.min()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
def test_each_pooling_against_transformers(pooling):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    if pooling == "mean":
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    elif pooling == "cls":
        expected = out.last_hidden_state[:, 0]
    else:
        expected = out.pooler_output
    expected = torch.nn.functional.normalize(expected, dim=1).numpy()
    ours, _ = Encoder.load(pooling=pooling).encode(SENTENCES)
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_a_checkpoint_without_pooler_weights_refuses_pooler(tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "no-pooler"
    shutil.copytree(MODEL, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("pooler.")}, folder / "model.safetensors")
    with pytest.raises(BadModel, match="no trained pooler weights"):
        Encoder.load(str(folder), pooling="pooler")
    assert Encoder.load(str(folder), pooling="mean").encode(["fine"])[0].shape == (1, 384)


@pytest.mark.parametrize("quantize", ["none", "bf16"])
def test_a_half_precision_checkpoint_runs_as_float32(tmp_path, quantize):
    """transformers 5 keeps a checkpoint's dtype: float16 weights ran in float16 on the CPU, and
    under bfloat16 autocast broke LayerNorm ("mixed dtype (CPU)"). They run as float32."""
    from safetensors.numpy import load_file, save_file

    if quantize == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no bfloat16 instructions")
    folder = tmp_path / "half"
    shutil.copytree(MODEL, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in weights.items()},
              folder / "model.safetensors")
    texts = ["a gripping thriller", "dull"]
    half = Encoder.load(str(folder), quantize=quantize)
    assert next(half.float_runtime.model.parameters()).dtype == torch.float32
    cosines = (half.encode(texts)[0] * Encoder.load().encode(texts)[0]).sum(axis=1)
    assert cosines.min() > 0.999


def test_encode_search_and_neighbors(tmp_path):
    store = tmp_path / "reviews"
    source = write_lines(tmp_path / "s.txt", SENTENCES)
    result = invoke("encode", str(source), "--json", store=store)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert list(record)[:9] == ["version", "added", "duplicates", "skipped", "truncated", "count", "dim", "seconds",
                                "load_seconds"]
    assert (record["version"], record["added"], record["count"], record["dim"]) == (1, 7, 7, 384)
    opened = Store.open(store)
    assert opened.keys() == SENTENCES and opened.version.kind == "sentences"
    assert opened.version.config["model"] == "packaged:all-MiniLM-L6-v2"
    assert opened.version.config["pooling"] == "mean" and opened.version.config["max_length"] == 256
    for text in SENTENCES[:4]:  # a stored sentence finds itself first
        assert opened.search(text, k=1)[0][0] == text
        assert opened.search(text, k=1)[0][1] == pytest.approx(1.0, abs=1e-5)
    lines = [json.loads(line) for line in invoke("search", "an exciting thriller", "-k", "2", "--json",
                                                 store=store).stdout.splitlines()]
    assert [list(r) for r in lines] == [["query", "rank", "id", "text", "score"]] * 2
    assert lines[0]["text"] == "a gripping thriller with a great cast" and lines[0]["id"] == 0
    neighbours = invoke("neighbors", "lovely and touching", "-k", "3", "--json", store=store)
    assert neighbours.exit_code == 0, neighbours.output
    assert "lovely and touching" not in [json.loads(l)["word"] for l in neighbours.stdout.splitlines()]
    by_row = invoke("neighbors", "2", "-k", "3", "--json", store=store)
    assert by_row.stdout == neighbours.stdout.replace('"query": "lovely and touching"', '"query": "2"')
    encoded = opened.encode(["lovely and touching"])
    assert float(encoded[0] @ opened.matrix()[2]) == pytest.approx(1.0, abs=1e-5)
    assert opened.similarity("lovely and touching", "lovely and touching") == pytest.approx(1.0, abs=1e-5)
    assert -1 <= opened.similarity("lovely and touching", "a text that is not stored") <= 1


def test_incremental_encodes_add_only_new_texts_and_share_segments(tmp_path):
    store = tmp_path / "store"
    first = write_lines(tmp_path / "a.txt", SENTENCES[:4] + [SENTENCES[0]])
    assert json.loads(invoke("encode", str(first), "--json", store=store).stdout)["duplicates"] == 1
    again = json.loads(invoke("encode", str(first), "--json", store=store).stdout)
    assert (again["version"], again["added"], again["duplicates"]) == (1, 0, 5)
    more = write_lines(tmp_path / "b.txt", SENTENCES)
    record = json.loads(invoke("encode", str(more), "--json", store=store).stdout)
    assert (record["version"], record["added"], record["duplicates"], record["count"], record["parent"]) == \
        (2, 3, 4, 7, 1)
    opened = Store.open(store)
    assert opened.keys() == SENTENCES
    assert [s.id for s in opened.segments(1)] == [s.id for s in opened.segments(2)][:1]  # reused, not copied
    assert sorted(p.name for p in (store / "vectors").iterdir()) == ["s1.safetensors", "s2.safetensors"]
    assert Store.open(store, version=1).keys() == SENTENCES[:4]
    assert opened.search(SENTENCES[6], k=1)[0][0] == SENTENCES[6]


def test_csv_jsonl_gz_stdin_and_external_ids(tmp_path):
    import gzip

    store = tmp_path / "store"
    csv_path = tmp_path / "r.csv"
    csv_path.write_text('id,text,label\nr1,"a gripping thriller, with a great cast",1\nr2,"two\nlines",0\n')
    result = json.loads(invoke("encode", str(csv_path), "--id-column", "id", "--json", store=store).stdout)
    assert result["added"] == 2
    hits = [json.loads(l) for l in invoke("search", "thriller", "-k", "1", "--json", store=store).stdout.splitlines()]
    assert (hits[0]["id"], hits[0]["text"]) == ("r1", "a gripping thriller, with a great cast")
    assert invoke("neighbors", "r2", "-k", "1", store=store).exit_code == 0
    jsonl = tmp_path / "r.jsonl.gz"
    with gzip.open(jsonl, "wt") as f:
        f.write(json.dumps({"body": "lovely and touching", "n": 7}) + "\n")
    result = json.loads(invoke("encode", str(jsonl), "--column", "body", "--id-column", "n", "--json",
                               store=store).stdout)
    assert (result["added"], result["count"]) == (1, 3)
    piped = invoke("encode", "-", "--json", store=store, input="from stdin\n\nlovely and touching\n")
    assert json.loads(piped.stdout)["added"] == 1 and json.loads(piped.stdout)["skipped"] == 1
    tsv = tmp_path / "r.tsv"
    tsv.write_text("text\nan utterly forgettable sequel\n")
    assert json.loads(invoke("encode", str(tsv), "--json", store=store).stdout)["count"] == 5


def test_bad_inputs_are_one_error_line(tmp_path, tiny_glove):
    store = tmp_path / "store"
    bad_bytes = tmp_path / "bad.txt"
    bad_bytes.write_bytes(b"fine\ncaf\xe9\n")
    no_column = tmp_path / "c.csv"
    no_column.write_text("body,label\nhello,1\n")
    bad_json = tmp_path / "j.jsonl"
    bad_json.write_text('{"text": "ok"}\n{"text": \n')
    no_field = tmp_path / "f.jsonl"
    no_field.write_text('{"body": "ok"}\n')
    not_bert = tmp_path / "gpt"
    not_bert.mkdir()
    (not_bert / "config.json").write_text('{"model_type": "gpt2"}')
    cases = [
        (["encode", str(bad_bytes)], f"Error: {bad_bytes}, line 2: undecodable bytes (not UTF-8) at column 4"),
        (["encode", str(no_column)], f"Error: {no_column}, line 1: several columns and none named 'text' "
                                     f"(columns: body, label; pick one with --column)"),
        (["encode", str(no_column), "--column", "txt"], f"Error: {no_column}, line 1: no column 'txt' "
                                                        f"(columns: body, label; pick one with --column)"),
        (["encode", str(bad_json)], f"Error: {bad_json}, line 2: not a JSON object (Expecting value)"),
        (["encode", str(no_field)],
         f"Error: {no_field}, line 1: no field 'text' (fields: body; pick one with --column)"),
        (["encode", str(tmp_path / "missing.txt")], f"Error: {tmp_path / 'missing.txt'}: no such file"),
        (["encode", str(bad_bytes), "--model", str(not_bert)],
         f"Error: {not_bert}: a gpt2 model, not a BERT-family encoder"),
        (["encode", str(bad_bytes), "--model", str(tmp_path / "nowhere")],
         f"Error: {tmp_path / 'nowhere'}: no such model folder"),
        (["encode", str(bad_bytes), "--model", "someone/not-cached"],
         "Error: someone/not-cached: not a folder, and not in the local Hugging Face cache"),
    ]
    for args, message in cases:
        result = invoke(*args, store=store)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith(message), (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not (store / "vectors").exists() or not list((store / "vectors").iterdir())


def test_empty_and_over_long_texts_are_counted(tmp_path):
    source = write_lines(tmp_path / "s.txt", ["short", "", "   ", "word " * 600, "another"])
    result = json.loads(invoke("encode", str(source), "--max-length", "16", "--json", store=tmp_path / "s").stdout)
    assert (result["added"], result["skipped"], result["truncated"]) == (3, 2, 1)
    assert Store.open(tmp_path / "s").version.config["max_length"] == 16


def test_kinds_do_not_mix(tmp_path, tiny_glove):
    words, sentences = tmp_path / "words", tmp_path / "sentences"
    ingest(Store.create(words), tiny_glove)
    text = write_lines(tmp_path / "s.txt", SENTENCES[:2])
    result = invoke("encode", str(text), store=words)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {words}: this store holds words; encode sentences into a store of their own "
                             f"(for example `--store sentences`)\n")
    assert invoke("encode", str(text), store=sentences).exit_code == 0
    result = invoke("ingest", str(tiny_glove), store=sentences)
    assert result.exit_code == 1 and "this store holds sentences" in result.stderr
    for args in (["analogy", "a", "b", "c"], ["eval", "analogies"], ["search", "x"]):
        result = invoke(*args, store=sentences if args[0] != "search" else words)
        assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "Traceback" not in result.output
    with pytest.raises(WrongKind):
        Store.open(words).search("x")


def test_settings_of_an_existing_store_are_kept(tmp_path):
    store = tmp_path / "store"
    encode_input(Store.create(store), str(write_lines(tmp_path / "a.txt", SENTENCES[:2])), pooling="cls")
    with pytest.raises(BadOption, match="encoded with pooling 'cls', not 'mean'"):
        encode_input(Store.open(store), str(write_lines(tmp_path / "b.txt", SENTENCES[2:4])), pooling="mean")
    result = encode_input(Store.open(store), str(tmp_path / "b.txt"))
    assert result.added == 2 and Store.open(store).version.config["pooling"] == "cls"


def test_search_refuses_when_the_model_is_gone(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(MODEL, folder)
    store = tmp_path / "store"
    encode_input(Store.create(store), str(write_lines(tmp_path / "a.txt", SENTENCES[:3])), model=str(folder))
    assert Store.open(store).search(SENTENCES[0], k=1)[0][0] == SENTENCES[0]
    shutil.rmtree(folder)
    result = invoke("search", "anything", store=store)
    assert result.exit_code == 1
    assert result.stderr == (f"Error: the model this store was encoded with cannot be found any more: {folder}: "
                             f"no such model folder\n")


def test_an_interrupted_encode_resumes(tmp_path, rt_sentences):
    """A real kill in the middle of an encode: the current version answers throughout, and the
    rerun keeps the rows already committed."""
    store = tmp_path / "store"
    encode_input(Store.create(store), str(write_lines(tmp_path / "first.txt", rt_sentences[:50])))
    source = write_lines(tmp_path / "rt.txt", rt_sentences[:1500])
    script = ("import sys\nfrom simdex import Store\nfrom simdex.engine.sentences.encode import encode_input\n"
              "from simdex.engine.progress import Progress\n"
              "def progress(label, done, shown):\n    print(shown['texts'], flush=True)\n"
              f"encode_input(Store.open({str(store)!r}), {str(source)!r}, stage_rows=200, "
              f"progress=Progress.calling(progress))\n")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    progress = [child.stdout.readline() for _ in range(2)]  # after the second window, rows are staged
    assert all(line.strip() for line in progress), "the encode ended before it reported progress"
    child.send_signal(signal.SIGKILL)
    child.wait()
    opened = Store.open(store)
    assert opened.version.version == 1 and opened.version.count == 50  # untouched, and answering
    assert opened.search(rt_sentences[3], k=1)[0][0] == rt_sentences[3]
    result = invoke("encode", str(source), "--json", store=store)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["resumed"] >= 150 and record["resumed"] + record["added"] == 1450, record
    assert record["count"] == 1500 and record["duplicates"] == 50
    assert result.stderr.startswith(f"resumed: {record['resumed']:,} texts encoded by an interrupted run were kept")
    final = Store.open(store)
    assert final.keys() == rt_sentences[:50] + [t for t in rt_sentences[:1500] if t not in set(rt_sentences[:50])] \
        or sorted(final.keys()) == sorted(set(rt_sentences[:1500]))
    assert len(set(final.keys())) == 1500
    assert final.search(rt_sentences[1400], k=1)[0][0] == rt_sentences[1400]


def test_named_stores_and_the_stores_listing(tmp_path, monkeypatch, tiny_glove):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(tiny_glove), "--store", "words"]).exit_code == 0
    text = write_lines(tmp_path / "s.txt", SENTENCES[:3])
    assert runner.invoke(cli, ["encode", str(text), "--store", "reviews"]).exit_code == 0
    assert (tmp_path / "data" / "simdex" / "words" / "store.db").is_file()
    monkeypatch.setenv("SIMDEX_STORE", "reviews")
    assert runner.invoke(cli, ["search", SENTENCES[1], "-k", "1"]).stdout.splitlines()[1].endswith(SENTENCES[1])
    listing = [json.loads(line) for line in runner.invoke(cli, ["stores", "--json"]).stdout.splitlines()]
    assert [(r["name"], r["kind"], r["current"], r["count"], r["dim"], r["index"]) for r in listing] == [
        ("reviews", "sentences", 1, 3, 384, None), ("words", "words", 1, 6, 4, None)]
    assert all(r["bytes"] > 0 and r["path"].startswith(str(tmp_path)) for r in listing)
    table = runner.invoke(cli, ["stores"]).stdout
    assert table.startswith("reviews ") and "sentences" in table


def test_a_model_from_the_hugging_face_cache(tmp_path):
    """A name already in the local Hugging Face cache loads offline, as a folder would."""
    snapshot = tmp_path / "hub" / "models--someone--minilm" / "snapshots" / "0123abc"
    shutil.copytree(MODEL, snapshot)
    (tmp_path / "hub" / "models--someone--minilm" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--minilm" / "refs" / "main").write_text("0123abc")
    store = tmp_path / "store"
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    simdex = str(Path(sys.executable).with_name("simdex"))
    result = subprocess.run([simdex, "encode", str(write_lines(tmp_path / "a.txt", SENTENCES[:3])), "--model",
                             "someone/minilm", "--store", str(store), "--json"], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 3 and Store.open(store).version.config["model"] == "someone/minilm"
    found = subprocess.run([simdex, "search", SENTENCES[1], "-k", "1", "--json", "--store", str(store)], env=env,
                           capture_output=True, text=True)
    assert json.loads(found.stdout)["text"] == SENTENCES[1]


def test_no_cuda_here_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = invoke("encode", str(write_lines(tmp_path / "a.txt", SENTENCES[:2])), "--device", "cuda",
                    store=tmp_path / "s")
    assert result.exit_code == 1 and result.stderr.startswith("Error: --device cuda: no CUDA device here")


def test_an_index_over_sentences_follows_new_texts(tmp_path, rt_sentences):
    from simdex.indexes import build_index

    store = tmp_path / "store"
    encode_input(Store.create(store), str(write_lines(tmp_path / "a.txt", rt_sentences[:1000])))
    built = build_index(Store.open(store), kind="hnsw", target_recall=0.95)
    assert built.met
    result = invoke("encode", str(write_lines(tmp_path / "b.txt", rt_sentences[1000:1300])), "--json", store=store)
    assert result.exit_code == 0, result.output
    assert "the hnsw index now covers version 2" in result.stderr
    opened = Store.open(store)
    state = opened.index_state()
    assert (state["version"], state["stale"]) == (2, False) and state["recall_at_10"] >= 0.95
    assert opened.searcher().ntotal == 1300
    assert opened.search(rt_sentences[1250], k=1)[0][0] == rt_sentences[1250]
    for text in rt_sentences[1000:1010]:
        assert opened.search(text, k=1)[0][0] == opened.search(text, k=1, exact=True)[0][0] == text


def test_memory_is_bounded_by_the_window_not_the_input(tmp_path):
    """tracemalloc's peak while encoding 40,000 short texts stays near that of 4,000."""
    import tracemalloc

    from simdex.engine.sentences import encode as encode_module

    def peak(n):
        path = write_lines(tmp_path / f"{n}.txt", [f"t{i}" for i in range(n)])
        store = Store.create(tmp_path / f"s{n}")
        tracemalloc.start()
        encode_input(store, str(path), stage_rows=2000)
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    assert encode_module.WINDOW >= 2000
    small, large = peak(4000), peak(40_000)
    assert large < 1.5 * small, (small, large)


def test_int8_is_recorded_and_kept_with_the_store(tmp_path, rt_sentences):
    full, int8 = tmp_path / "full", tmp_path / "int8"
    source = write_lines(tmp_path / "rt.txt", rt_sentences[:300])
    encode_input(Store.create(full), str(source))
    result = invoke("encode", str(source), "--quantize", "int8", "--json", store=int8)
    assert result.exit_code == 0, result.output
    opened = Store.open(int8)
    config = opened.version.config
    assert config["quantize"] == "int8" and (int8 / config["int8_model"]).is_file()
    cosines = np.sum(Store.open(full).matrix() * opened.matrix(), axis=1)
    assert cosines.min() > 0.98 and cosines.mean() > 0.99, (cosines.min(), cosines.mean())
    assert opened.search(rt_sentences[7], k=1)[0][0] == rt_sentences[7]  # queries run the store's int8 model
    more = json.loads(invoke("encode", str(write_lines(tmp_path / "more.txt", rt_sentences[300:320])), "--json",
                             store=int8).stdout)
    assert more["added"] == 20 and Store.open(int8).version.config["int8_model"] == config["int8_model"]
    (int8 / config["int8_model"]).unlink()
    gone = invoke("search", "x", store=int8)
    assert gone.exit_code == 1 and gone.stderr.startswith(f"Error: {int8 / config['int8_model']}: the int8 model")

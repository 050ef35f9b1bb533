"""Evaluation: hand-made cases exactly, then gensim's numbers on the packaged GloVe 6B 50d."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import KeyedVectors

from simdex.cli import cli
from simdex.engine import BadEvalFile, packaged
from simdex.engine.records import to_json
from simdex.engine.words.evaluate import evaluate_analogies, evaluate_pairs, read_analogies, spearman

ANALOGIES = """: royals
man king woman queen
MAN KING WOMAN QUEEN
man king woman prince
man king dragon queen
: fruit
king queen man woman
"""


@pytest.fixture
def analogy_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(ANALOGIES)
    return path


def test_hand_made_analogies_exactly(tiny_store, analogy_file):
    result = evaluate_analogies(tiny_store, analogy_file)
    # line 3 is line 2 in capitals (matching is case-insensitive); line 4 expects the wrong
    # answer; "dragon" is out of vocabulary; king:queen::man:woman is right
    assert (result.correct, result.questions, result.skipped) == (3, 4, 1)
    assert [(s.name, s.correct, s.questions) for s in result.sections] == [("royals", 2, 3), ("fruit", 1, 1)]
    assert to_json(result)["sections"][0] == {"name": "royals", "accuracy": round(2 / 3, 6), "correct": 2,
                                              "questions": 3}


def test_restrict_makes_words_out_of_vocabulary(tiny_store, analogy_file):
    result = evaluate_analogies(tiny_store, analogy_file, restrict=3)
    assert (result.questions, result.skipped) == (0, 5) and result.accuracy == 0.0


def test_malformed_analogy_lines(tiny_store, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(": s\nman king woman queen\nman king woman\n")
    with pytest.raises(BadEvalFile, match=f"^{path}, line 3: expected 4 words, found 3$"):
        evaluate_analogies(tiny_store, path)
    result = evaluate_analogies(tiny_store, path, on_error="skip")
    assert (result.questions, result.invalid) == (1, 1)
    orphan = tmp_path / "orphan.txt"
    orphan.write_text("man king woman queen\n")
    with pytest.raises(BadEvalFile, match="line 1: a question before the first ': section' header"):
        read_analogies(orphan)


def test_pairs_and_malformed_pairs(tiny_store, tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("# comment\nking\tqueen\t5\nking\tprince\t9\nman\tapple\t1\nking\tdragon\t3\n")
    result = evaluate_pairs(tiny_store, path)
    assert (result.pairs, result.oov_pairs, result.oov) == (3, 1, 0.25)
    assert result.spearman == pytest.approx(1.0)
    path.write_text("king\tqueen\t5\nking queen 5\n")
    with pytest.raises(BadEvalFile, match="line 2: expected 3 tab-separated fields, found 1"):
        evaluate_pairs(tiny_store, path)
    path.write_text("king\tqueen\tlots\n")
    with pytest.raises(BadEvalFile, match="line 1: score 'lots' is not a number"):
        evaluate_pairs(tiny_store, path)


def test_spearman_and_pearson_match_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, size=200).astype(float)  # many ties
    y = x + rng.normal(size=200)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


def test_cli_eval(tiny_store, analogy_file):
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "analogies", str(analogy_file), "--json", "--store", str(tiny_store.path)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert list(record)[:7] == ["name", "accuracy", "correct", "questions", "skipped", "seconds", "sections"]
    assert (record["name"], record["correct"], record["questions"], record["skipped"]) == ("a", 3, 4, 1)
    missing = runner.invoke(cli, ["eval", "pairs", "nope.tsv", "--store", str(tiny_store.path)])
    assert missing.exit_code == 1 and missing.stderr == "Error: nope.tsv: no such file\n"


# -- gensim's numbers on the packaged GloVe 6B 50d --------------------------------------------------

def test_google_analogies_3cosadd_match_gensim(glove_store):
    result = evaluate_analogies(glove_store, restrict=300_000)
    assert (result.questions, result.skipped) == (19_486, 58)
    assert round(result.accuracy, 4) == 0.4637 and result.correct == 9036
    result = evaluate_analogies(glove_store, restrict=30_000)
    assert (result.questions, round(result.accuracy, 4)) == (14_877, 0.4969)


def test_per_question_agreement_with_gensim_on_a_sample(glove_store, glove_kv, tmp_path):
    """Both methods, question by question, against gensim's own evaluation on a sample."""
    lines = packaged.ANALOGY_SETS["questions-words"].read_text().splitlines()
    sample = []
    for number, line in enumerate(lines):
        if line.startswith(":"):
            sample.append(line)
        elif number % 40 == 0:
            sample.append(line)
    path = tmp_path / "sample.txt"
    path.write_text("\n".join(sample) + "\n")
    theirs_add, details = glove_kv.evaluate_word_analogies(str(path), restrict_vocab=300_000)
    ours_add = evaluate_analogies(glove_store, path, restrict=300_000)
    assert ours_add.accuracy == pytest.approx(theirs_add, abs=1e-12)
    assert [len(s["correct"]) for s in details[:-1]] == [s.correct for s in ours_add.sections]

    # gensim's evaluation loop with most_similar_cosmul in place of most_similar, over
    # KeyedVectors holding only the first N words: what gensim documents restrict_vocab to mean
    # (its most_similar_cosmul ignores the argument; see the README)
    restrict = 30_000
    first = KeyedVectors(vector_size=50, dtype=np.float32)
    first.add_vectors(glove_kv.index_to_key[:restrict], glove_kv.vectors[:restrict])
    first.most_similar = lambda positive, negative, topn, restrict_vocab: first.most_similar_cosmul(
        positive=positive, negative=negative, topn=topn)
    theirs_mul, details = first.evaluate_word_analogies(str(path), restrict_vocab=restrict)
    ours_mul = evaluate_analogies(glove_store, path, restrict=restrict, method="mul")
    assert ours_mul.accuracy == pytest.approx(theirs_mul, abs=1e-12)
    assert [len(s["correct"]) for s in details[:-1]] == [s.correct for s in ours_mul.sections]


def test_3cosmul_with_a_restriction_searches_only_the_first_n_words(glove_store):
    """gensim's most_similar_cosmul ignores restrict_vocab (0.4278 here); the documented
    meaning, "only check the first N vectors", gives 0.4325."""
    result = evaluate_analogies(glove_store, restrict=30_000, method="mul")
    assert (result.questions, round(result.accuracy, 4)) == (14_877, 0.4325)
    answer = glove_store.analogy("man", "king", "woman", k=10, method="mul", restrict=1000)
    assert all(glove_store.id_of(word) < 1000 for word, _ in answer) and len(answer) == 10


def test_word_pairs_match_gensim(glove_store, glove_kv):
    expected = {"wordsim353": 0.5033, "simlex999": 0.2631}
    for name, path in packaged.PAIR_SETS.items():
        ours = evaluate_pairs(glove_store, path)
        pearson, spearman_result, oov_percent = glove_kv.evaluate_word_pairs(str(path))
        assert round(ours.spearman, 4) == expected[name]
        assert ours.spearman == pytest.approx(spearman_result.statistic, abs=1e-6)
        assert ours.pearson == pytest.approx(pearson.statistic, abs=1e-6)
        assert 100 * ours.oov == pytest.approx(oov_percent)


def test_cli_eval_all_and_compare_on_glove(glove_store):
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "all", "--json", "--store", str(glove_store.path)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in records] == ["questions-words", "wordsim353", "simlex999"]
    assert records[0]["semantic"]["questions"] + records[0]["syntactic"]["questions"] == 19_486
    result = runner.invoke(cli, ["eval", "compare", "1", "1", "--json", "--store", str(glove_store.path)])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0] == {"metric": "questions-words accuracy (add)", "v1": 0.463718, "v2": 0.463718, "diff": 0.0,
                       "search_v1": "exact", "search_v2": "exact"}
    assert {row["metric"] for row in rows} >= {"wordsim353 spearman", "simlex999 spearman"}

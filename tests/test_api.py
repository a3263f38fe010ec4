"""The Python API (``import stemeval``), as the README shows it: the same rows, reports and
one-line errors as the command line, returned as plain data.

A biased random AST makes ``Drum kit`` every stem's label (the speech graph's constant score
passes ``Speech`` over), so the rows are known without running the code under test.
"""

import collections
import json
import subprocess
import sys

import pytest

import stemeval
from stemeval.commands import evaluate as evaluate_command
from stemeval.commands import score as score_command
from stemeval.common.errors import exit_status
from stemeval.datasets import category_map
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.runfiles.results import read_results
from tests.helpers import dataset_trees
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

BIAS = {AUDIOSET_LABELS.index("Speech"): 10.0, AUDIOSET_LABELS.index("Drum kit"): 6.0}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"checkpoint": str(save_original_checkpoint(random_model(label_bias=BIAS),
                                                       folder / "ast.pth")),
            "speech_model": str(write_constant_speech_graph(folder / "speech.pb",
                                                            logit_for_score(3.0)))}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    expected = dataset_trees.musdb18hq(tmp_path / "musdb")
    monkeypatch.chdir(tmp_path)
    return expected


def test_import_exposes_the_documented_api():
    assert dir(stemeval) == sorted(["evaluate", "score", "compare", "label_counts", "Run",
                                    "UserError", "DATASETS", "TAGGERS"])
    assert "dsd100" in stemeval.DATASETS and "panns-cnn14" in stemeval.TAGGERS
    with pytest.raises(AttributeError):
        stemeval.no_such_name


def test_import_stemeval_loads_no_heavy_library():
    code = ("import sys, stemeval, stemeval.common.errors; "
            "print(sorted({'torch', 'transformers', 'ray', 'matplotlib'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout == "[]\n"


def test_evaluate_gives_the_command_lines_rows(tree, models, capsys):
    run = stemeval.evaluate("musdb18hq", "musdb", "api.csv", workers=0, **models)
    proposed = category_map("musdb18hq").category("drum kit")
    assert run.output.name == "api.csv"
    assert [(row["path"], row["label"], row["prediction"], row["proposed_label"])
            for row in run.rows] == [(f"musdb/{path}", label, "drum kit", proposed)
                                     for path, label, _, _ in tree]
    assert "progress" not in capsys.readouterr().err  # quiet unless progress=True
    argv = ["musdb18hq", "musdb", "--output", "cli.csv", "--checkpoint", models["checkpoint"],
            "--speech-model", models["speech_model"], "--workers", "0", "--quiet"]
    assert evaluate_command.main(argv) == 0
    assert read_results("cli.csv") == run.rows


def test_evaluate_defaults_and_options(tree, models):
    run = stemeval.evaluate("musdb18hq", "musdb", limit=2, details=True, workers=0, **models)
    assert str(run.output) == "results_musdb18hq.csv" and len(run.rows) == 2
    assert {"score", "top5", "group"} <= set(run.rows[0])
    again = stemeval.evaluate("musdb18hq", "musdb", resume=True, details=True, workers=0,
                              **models)
    assert [row["path"] for row in again.rows] == [f"musdb/{path}" for path, *_ in tree]


@pytest.mark.parametrize("call, message", [
    (lambda: stemeval.evaluate("dsd99", "x"), "unknown dataset 'dsd99'"),
    (lambda: stemeval.evaluate("musdb18hq", "musdb", colour="red"), "unknown option 'colour'"),
    (lambda: stemeval.evaluate("musdb18hq", "no-such-folder", workers=0),
     "no-such-folder"),
    (lambda: stemeval.evaluate("musdb18hq", "musdb", batch_size=0), "--batch-size"),
    (lambda: stemeval.score("missing.csv"), "missing.csv"),
])
def test_bad_input_is_the_command_lines_one_line_error(tree, call, message):
    with pytest.raises(stemeval.UserError, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)


def test_score_is_what_the_json_option_writes(tree, models, capsys):
    run = stemeval.evaluate("musdb18hq", "musdb", "r.csv", workers=0, **models)
    report = stemeval.score("r.csv")
    matches = sum(row["label"].lower() == row["proposed_label"] for row in run.rows)
    assert (report["matches"], report["total"]) == (matches, len(run.rows))
    assert report["accuracy"] == matches / len(run.rows)
    assert score_command.main(["r.csv", "--stats", "--json", "r.json"]) == 0
    capsys.readouterr()
    with open("r.json", encoding="utf-8") as handle:
        written = json.load(handle)
    assert json.loads(json.dumps(report).replace("NaN", "null")) == written


def test_compare_and_label_counts(tree, models, capsys):
    stemeval.evaluate("musdb18hq", "musdb", "a.csv", workers=0, **models)
    stemeval.evaluate("musdb18hq", "musdb", "b.csv", limit=3, workers=0, **models)
    board = stemeval.compare(["a.csv", "b.csv"])
    assert [(run["file"], run["total"]) for run in board["leaderboard"]] == [
        ("a.csv", len(tree)), ("b.csv", 3)]
    assert [entry["stems"] for entry in board["stem_sets"]] == [len(tree), 3]
    assert stemeval.label_counts("a.csv") == dict(sorted(collections.Counter(
        label.lower() for _, label, _, _ in tree).items()))
    assert exit_status(lambda: score_command.main(["a.csv", "b.csv"])) == 0
    assert "ast (a)" in capsys.readouterr().out

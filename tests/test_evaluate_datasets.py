"""evaluate.py's command line on every dataset's generated tree, with random weights: the CSV
has the expected stems, labels and groups, and computeaccuracy.py and list_labels.py read it.

A biased random AST makes ``Drum kit`` the chosen label for every stem (the speech graph's
constant score passes ``Speech`` over), so each row's proposed label is the map's category
of ``drum kit``.
"""

import csv
import os

import pytest

import computeaccuracy
from AST import list_labels
from commonutils import main
from stemeval.common.errors import UserError
from stemeval.datasets import category_map
from stemeval.labels.audioset import AUDIOSET_LABELS
from tests.helpers import dataset_trees
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

BIAS = {AUDIOSET_LABELS.index("Speech"): 10.0, AUDIOSET_LABELS.index("Drum kit"): 6.0}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return ["--checkpoint",
            str(save_original_checkpoint(random_model(label_bias=BIAS), folder / "ast.pth")),
            "--speech-model",
            str(write_constant_speech_graph(folder / "speech.pb", logit_for_score(3.0))),
            "--quiet", "--workers", "0"]


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("dataset", sorted(dataset_trees.TREES))
def test_each_dataset_writes_a_csv_the_scorers_read(tmp_path, monkeypatch, capsys, models,
                                                     dataset):
    expected = dataset_trees.TREES[dataset](tmp_path / "tree")
    monkeypatch.chdir(tmp_path)
    folder = dataset_trees.input_path(dataset, "tree")
    assert main(argv=[dataset, folder, "--details", *models]) == 0
    rows = read_rows(f"results_{dataset}.csv")
    proposed = category_map(dataset).category("drum kit")
    assert [(row["path"], row["label"], row["group"], row["prediction"], row["proposed_label"])
            for row in rows] == [(os.path.join("tree", path), label, group, "drum kit", proposed)
                                 for path, label, group, _ in expected]
    capsys.readouterr()

    computeaccuracy.main([f"results_{dataset}.csv", "--per-class"])
    matches = sum(label.lower() == proposed for _, label, _, _ in expected)
    assert f"({matches}/{len(expected)} matches)" in capsys.readouterr().out
    assert list_labels.main([f"results_{dataset}.csv", "--format", "compact"]) == 0
    assert capsys.readouterr().out.splitlines() == sorted(
        {label.lower() for _, label, _, _ in expected})


def test_split_limit_and_map(tmp_path, monkeypatch, capsys, models):
    dataset_trees.musdb18hq(tmp_path / "musdb")
    dataset_trees.manifest(tmp_path / "own")
    monkeypatch.chdir(tmp_path)
    assert main(argv=["musdb18hq", "musdb", "--split", "train", "--limit", "2",
                      "--output", "two.csv", *models]) == 0
    assert [row["path"] for row in read_rows("two.csv")] == [
        os.path.join("musdb", "train", "A - One", name) for name in ("bass.wav", "drums.wav")]

    (tmp_path / "kit.toml").write_text('guitar = ["Guitar", "Drum kit"]\n')
    assert main(argv=["manifest", "own/lists/stems.csv", "--map", "kit.toml",
                      "--output", "mapped.csv", *models]) == 0
    assert {row["proposed_label"] for row in read_rows("mapped.csv")} == {"guitar"}
    assert ("warning: 2 of 3 stems have a label that is not a category of the map, so they can "
            "never match: kazoo (1), Violin, fiddle (1)") in capsys.readouterr().err

    (tmp_path / "none.toml").write_text('piano = ["Piano"]\n')
    with pytest.raises(UserError, match="none of the 3 stems under own/lists/stems.csv has a "
                                        "label among the categories of --map none.toml"):
        main(argv=["manifest", "own/lists/stems.csv", "--map", "none.toml", *models])

"""Files paired with their run by identity, not by name (issue 36): embeddings, kept scores
and zero-shot CSVs of another run (another dataset, other weights) are refused with one
line naming what differs; kept scores that cannot give a row (no instrument label among
their classes, an identity that is not JSON) are one ``error:`` line, not a traceback.

Before: ``computeaccuracy.py base6/out.csv --oracle --embeddings base8/e.npz`` printed a
probe column computed on 24 other stems, embeddings of other weights were accepted,
``probe.py e.npz --zero-shot`` took a CSV of other weights; ``--map`` on such kept scores
ended in ``ValueError: no instrument label among the model's classes`` or
``JSONDecodeError``. Run files are made by hand, as a run writes them.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from stemeval.commands import probe as probe_command
from stemeval.commands import score as score_command
from stemeval.common.errors import exit_status
from stemeval.runfiles.record_log import save_npz
from tests.helpers import dataset_trees

ROOT = Path(__file__).resolve().parents[1]
MAP = ROOT / "stemeval/datasets/maps/dsd100.toml"
HEADER = ["label", "path", "prediction", "proposed_label", "group"]
LABELS = ("bass", "drums")


def identity(weights="a", dataset="dsd100"):
    return {"tagger": "ast", "weights": {"path": f"/m/{weights}.pth", "sha256": weights * 64},
            "speech_model": {"path": "/m/speech.pb", "sha256": "b" * 64},
            "dataset": dataset, "deform": "clean", "precision": "fp32"}


def make_run(folder, tree="tree", made=None, note=True, tracks=8):
    """A results CSV of ``tracks`` x (bass, drums) under ``tree``, its sidecar (identity
    ``made``), kept scores and embeddings ``e.npz`` (one-hot by label, plus noise), noted
    as a run notes them unless not ``note``; returns the CSV's path."""
    made = made or identity()
    folder.mkdir(parents=True, exist_ok=True)
    rows = [[label, f"{tree}/{track}/{label}.wav", "bass guitar", "bass", f"t{track}"]
            for track in range(tracks) for label in LABELS]
    results = dataset_trees.write_csv(folder / "out.csv", [HEADER] + rows)
    (folder / "out.csv.json").write_text(json.dumps({
        "tagger": "ast", "identity": made, "sessions": [],
        "options": {"embeddings": str(folder / "e.npz")}}))
    paths, labels = np.array([row[1] for row in rows]), np.array([row[0] for row in rows])
    groups = np.array([row[4] for row in rows])
    np.savez(folder / "out.csv.scores.npz", scores=np.zeros((len(rows), 2), np.float32),
             gated=np.zeros(len(rows), bool), speech_rule=np.full(len(rows), -1, np.int8),
             classes=np.array(["Bass guitar", "Drum kit"]), tagger=np.array("ast"),
             zero_shot=np.array(False), identity=np.array(json.dumps(made)),
             paths=paths, labels=labels, groups=groups)
    vectors = np.eye(2)[[LABELS.index(label) for label in labels]] * 4
    vectors = vectors + np.random.default_rng(0).normal(0, 0.1, vectors.shape)
    arrays = {"embeddings": vectors.astype(np.float32), "paths": paths, "labels": labels,
              "groups": groups, "tagger": np.array("ast"),
              "weights": np.array(made["weights"]["sha256"])}
    with open(folder / "e.npz", "wb") as handle:
        save_npz(handle, arrays, {"kind": "stemeval embeddings",
                                  "output": os.path.realpath(results),
                                  "identity": made} if note else None)
    return results


def outcome(main, capsys):
    status = exit_status(main)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_error(main, capsys):
    status, out, err = outcome(main, capsys)
    assert status == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0][len("error: "):]


def score(*args):
    return lambda: score_command.main([str(a) for a in args])


@pytest.fixture
def runs(tmp_path):
    """Three runs: ``a`` (8 tracks), ``b`` on other stems, ``c`` the same stems as ``a``
    with other weights."""
    return {"a": make_run(tmp_path / "a"), "b": make_run(tmp_path / "b", tree="other"),
            "c": make_run(tmp_path / "c", made=identity(weights="c"))}


def test_the_embeddings_of_the_same_run_are_taken(runs, capsys):
    status, out, err = outcome(score(runs["a"], "--oracle", "--folds", "2", "--embeddings",
                                     runs["a"].parent / "e.npz"), capsys)
    assert (status, err) == (0, ""), err
    assert "probe: the probe's recall on the run's embeddings" in out


def test_embeddings_of_other_stems_are_refused(runs, capsys):
    a, npz = runs["a"], runs["b"].parent / "e.npz"
    assert one_error(score(a, "--oracle", "--folds", "2", "--embeddings", npz), capsys) == (
        f"{npz} are not the embeddings of {a}: 16 of their 16 stems are not rows of it (e.g. "
        f"other/0/bass.wav), so they are of another dataset or other stems; give the "
        f"embeddings of the run that wrote {a}")


def test_embeddings_of_other_weights_are_refused(runs, capsys):
    a, npz = runs["a"], runs["c"].parent / "e.npz"
    assert one_error(score(a, "--oracle", "--folds", "2", "--embeddings", npz), capsys) == (
        f"{npz} are not the embeddings of {a}: they were made with weights /m/c.pth (sha256 "
        f"cccccccccccc), {a} with /m/a.pth (sha256 aaaaaaaaaaaa); give the embeddings of the "
        f"run that wrote {a}")


def test_embeddings_written_before_they_noted_their_run_are_paired_by_weights(tmp_path,
                                                                              capsys):
    a = make_run(tmp_path / "a")
    c = make_run(tmp_path / "c", made=identity(weights="c"), note=False)
    npz = c.parent / "e.npz"
    assert one_error(score(a, "--oracle", "--folds", "2", "--embeddings", npz), capsys) == (
        f"{npz} are not the embeddings of {a}: they were made with weights cccccccccccc, {a} "
        f"with /m/a.pth (sha256 aaaaaaaaaaaa); give the embeddings of the run that wrote {a}")


def test_a_zero_shot_csv_of_other_weights_is_refused(runs, capsys):
    npz, c = runs["a"].parent / "e.npz", runs["c"]
    message = one_error(lambda: probe_command.main([str(npz), "--zero-shot", str(c),
                                                    "--folds", "2"]), capsys)
    assert message == (f"{npz} are not the embeddings of {c}: they were made with weights "
                       f"/m/a.pth (sha256 aaaaaaaaaaaa), {c} with /m/c.pth (sha256 "
                       f"cccccccccccc); give the embeddings of the run that wrote {c}")


def test_a_folder_given_as_embeddings_is_named_a_folder(runs, capsys):
    """Before: "no such file"."""
    folder = runs["a"].parent
    for main in (score(runs["a"], "--oracle", "--folds", "2", "--embeddings", folder),
                 lambda: probe_command.main([str(folder)])):
        assert one_error(main, capsys) == (f"{folder}: is a folder; give an embeddings .npz "
                                           f"file (evaluate.py --embeddings writes one)")


def rewrite_kept(run, **changes):
    path = f"{run}.scores.npz"
    with np.load(path) as saved:
        arrays = dict(saved)
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def test_kept_scores_of_another_run_are_refused(runs, capsys):
    a = runs["a"]
    kept = rewrite_kept(a, identity=np.array(json.dumps(identity(dataset="moisesdb"))))
    assert one_error(score(a, "--map", MAP), capsys) == (
        f"{kept} are not the kept scores of {a}: they were made with dataset moisesdb, its "
        f"sidecar {a}.json names dsd100; run the evaluation again to keep them")


def test_kept_scores_without_an_instrument_label_are_one_error(runs, capsys):
    a = runs["a"]
    kept = rewrite_kept(a, classes=np.array(["Engine", "Rain"]))
    for args in (["--map", MAP], ["--labels"], ["--oracle", "--folds", "2"]):
        assert one_error(score(a, *args), capsys) == (
            f"{kept}: its 2 classes hold no AudioSet instrument label, so no row can be derived "
            f"from its scores (the published pick names instruments); they are not the kept "
            f"scores of an AudioSet tagger's run")


@pytest.mark.parametrize("value", ['{"tagger": "ast", ', "[1, 2]"])
def test_an_identity_that_is_not_json_is_one_error(runs, capsys, value):
    a = runs["a"]
    kept = rewrite_kept(a, identity=np.array(value))
    assert one_error(score(a, "--map", MAP), capsys).startswith(
        f"{kept}: its identity array is not the JSON of a run's identity (")

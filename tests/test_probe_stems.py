"""probe.py beside zero-shot rows, stem by stem: the stems the speech gate sent to speech are
counted apart, each stem's fold and answers are kept in --json, and --probe-right lists the
stems the probe names right and the zero-shot rows do not. The embeddings are separable (the
probe names every stem right), so that list is every stem the rows got wrong."""

import csv
import json

import numpy as np

from tests.helpers.cli import run_script

CATEGORIES = ["bass", "drums", "vocals"]
TRACKS = 12


def write_run(folder):
    """Embeddings of 12 tracks x 3 stems around one centre per category, and the rows of the
    same run: bass of tracks 0-1 and vocals of track 2 gated as speech, drums of tracks 3-4
    proposed as bass, every other row right."""
    rng = np.random.default_rng(0)
    paths, labels, groups, rows = [], [], [], []
    for track in range(TRACKS):
        for category in CATEGORIES:
            path = f"songs/t{track:02d}/{category}.wav"
            paths.append(path)
            labels.append(category)
            groups.append(f"t{track:02d}")
            gated = (category, track) in {("bass", 0), ("bass", 1), ("vocals", 2)}
            wrong = category == "drums" and track in (3, 4)
            rows.append([category, path, "speech" if gated else "x",
                         "speech" if gated else "bass" if wrong else category])
    vectors = np.eye(3)[[CATEGORIES.index(label) for label in labels]] * 4
    np.savez(folder / "e.npz", embeddings=(vectors + rng.normal(0, 0.2, vectors.shape))
             .astype(np.float32), paths=np.array(paths), labels=np.array(labels),
             groups=np.array(groups), tagger=np.array("ast"))
    with open(folder / "r.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "path", "prediction", "proposed_label"])
        writer.writerows(rows)
    return rows


def probe(folder, *args):
    return run_script("probe.py", *args, cwd=folder)


def test_gated_stems_fold_answers_and_the_probe_right_list(tmp_path):
    rows = write_run(tmp_path)
    done = probe(tmp_path, "e.npz", "--zero-shot", "r.csv", "--folds", "3", "--probe-right",
                 "--json", "p.json")
    assert (done.returncode, done.stderr) == (0, "")
    assert ("ast zero-shot: 3 of its 36 stems were sent to speech by the speech gate, so the "
            "tagger never heard them; they count as zero-shot misses above (bass 2, vocals 1)"
            ) in done.stdout.splitlines()
    listed = done.stdout.split("Stems ast's probe names right and its zero-shot rows do not "
                               "(5):\n")[1].splitlines()
    wrong = [row for row in rows if row[0] != row[3]]
    assert listed[len(wrong)] == "JSON report written to p.json"
    listed = listed[:len(wrong)]
    assert [line.split()[-1] for line in listed] == [row[1] for row in wrong]
    assert [line.split()[:3] for line in listed] == [
        [row[0], "zero-shot", row[3]] for row in wrong]
    assert [line.endswith("(gated as speech)") for line in
            (line.rsplit("  fold", 1)[0] for line in listed)] == [row[3] == "speech"
                                                                   for row in wrong]
    stems = json.loads((tmp_path / "p.json").read_text())["results"][0]["per_stem"]
    assert [(stem["path"], stem["label"], stem["zero-shot"], stem["gated"]) for stem in stems] \
        == [(row[1], row[0], row[3], row[2] == "speech") for row in rows]
    assert all(stem["probe"] == stem["label"] for stem in stems)
    folds = {}
    for stem in stems:  # each track tested in one fold, every fold used
        folds.setdefault(stem["group"], set()).add(stem["fold"])
    assert all(len(found) == 1 for found in folds.values())
    assert set().union(*folds.values()) == {1, 2, 3}


def test_probe_right_needs_zero_shot_rows(tmp_path):
    write_run(tmp_path)
    done = probe(tmp_path, "e.npz", "--probe-right")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("error: --probe-right goes with --zero-shot (the rows the probe is "
                           "set beside)\n")

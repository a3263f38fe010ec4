"""Is it the tagger or the map? ``computeaccuracy.py --labels`` and ``--oracle`` on a results
CSV built so that the answers are known: over 10 tracks, every bass stem is picked as
Synthesizer, which its map leaves to `other` (the map's miss: the oracle map wins all 10
back); drums are picked right; vocals are Singing (right) on 6 tracks, Drum kit (the
tagger's miss: Drum kit means drums) on 2 and sent to speech by the gate on 2."""

import csv
import json

import numpy as np

from stemeval.labels.audioset import AUDIOSET_LABELS
from tests.helpers.cli import run_script

COLUMNS = ["label", "path", "prediction", "proposed_label", "score", "speech_score", "top5",
           "error", "group"]
TRACKS = [f"t{number}" for number in range(10)]


def case_rows():
    rows = []
    for number, track in enumerate(TRACKS):
        vocals = (("singing", "vocals") if number < 6 else ("drum kit", "drums") if number < 8
                  else ("speech", "speech"))
        for label, (prediction, proposed) in (("bass", ("synthesizer", "other")),
                                              ("drums", ("drum kit", "drums")),
                                              ("vocals", vocals)):
            rows.append({"label": label, "path": f"songs/{track}/{label}.wav",
                         "prediction": prediction, "proposed_label": proposed, "group": track})
    return rows


def write_case(path, columns=COLUMNS, rows=None):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows or case_rows())
    return path


def computeaccuracy(*args, cwd):
    return run_script("computeaccuracy.py", *args, cwd=cwd)


def section(stdout, heading):
    """The lines of the section that starts with ``heading``, up to the next blank line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
    return lines[start + 1:end]


def cells(lines):
    """Table lines as their cells (two spaces or more apart)."""
    return [[cell.strip() for cell in line.strip().split("  ") if cell.strip()]
            for line in lines]


def one_line_error(result):
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: "):]


ORACLE = [
    ["category", "stems", "this map", "gated as speech", "tagger/map", "oracle map",
     "map's share"],
    ["bass", "10", "0 (0.00%)", "0", "10", "10 (100.00%)", "+10 (+100.00)"],
    ["drums", "10", "10 (100.00%)", "0", "0", "10 (100.00%)", "+0 (+0.00)"],
    ["vocals", "10", "6 (60.00%)", "2", "2", "6 (60.00%)", "+0 (+0.00)"],
    ["all", "30", "16 (53.33%)", "2", "12", "26 (86.67%)", "+10 (+33.33)"],
]


def test_the_oracle_map_finds_the_maps_share(tmp_path):
    write_case(tmp_path / "case.csv")
    result = computeaccuracy("case.csv", "--oracle", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = section(result.stdout, "The map's share of the error (oracle map:")
    assert cells(table[:5]) == ORACLE
    published = computeaccuracy("case.csv", cwd=tmp_path).stdout
    assert result.stdout.startswith(published)  # the published output first, unchanged


def test_groups_and_the_gate_from_the_kept_scores(tmp_path):
    """Without a group column, the groups are the kept scores'; their ``gated`` flags tell a
    row the gate sent to speech from a pick of Speech a map sends to a category speech."""
    rows = case_rows()
    write_case(tmp_path / "case.csv", columns=COLUMNS[:4], rows=rows)
    result = computeaccuracy("case.csv", "--oracle", cwd=tmp_path)
    assert one_line_error(result) == (
        "case.csv: 30 of its 30 rows have no group (track), e.g. songs/t0/bass.wav, so the "
        "folds cannot be grouped by track; give a CSV written with --details, or keep its "
        "kept scores beside it")
    stems = len(rows)
    np.savez(tmp_path / "case.csv.scores.npz",
             scores=np.zeros((stems, len(AUDIOSET_LABELS)), np.float32),
             gated=np.array([row["prediction"] == "speech" for row in rows]),
             speech_rule=np.full(stems, -1, np.int8), classes=np.array(AUDIOSET_LABELS),
             tagger=np.array("ast"), zero_shot=np.array(False), identity=np.array("{}"),
             paths=np.array([row["path"] for row in rows]),
             labels=np.array([row["label"] for row in rows]),
             groups=np.array([row["group"] for row in rows]))
    result = computeaccuracy("case.csv", "--oracle", "--labels", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert cells(section(result.stdout, "The map's share of the error")[:5]) == ORACLE
    assert ["speech (gate)", "0", "0", "2", "2"] in cells(
        section(result.stdout, "Where the labels land"))
    with np.load(tmp_path / "case.csv.scores.npz") as saved:
        kept = dict(saved)
    kept["gated"] = np.zeros(stems, bool)  # the same rows, from the pick of Speech
    np.savez(tmp_path / "case.csv.scores.npz", **kept)
    result = computeaccuracy("case.csv", "--labels", cwd=tmp_path)
    assert ["speech", "0", "0", "2", "2"] in cells(section(result.stdout, "Where the labels land"))


def test_where_the_labels_land(tmp_path):
    write_case(tmp_path / "case.csv")
    result = computeaccuracy("case.csv", "--labels", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert cells(section(result.stdout, "Where the labels land")) == [
        ["pick", "bass", "drums", "vocals", "all"],
        ["drum kit", "0", "10", "2", "12"],
        ["synthesizer", "10", "0", "0", "10"],
        ["singing", "0", "0", "6", "6"],
        ["speech (gate)", "0", "0", "2", "2"],
        ["all", "10", "10", "10", "30"]]
    assert section(result.stdout, "Per ground-truth category, its stems' picks") == [
        "  bass (10 stems, 0 right)",
        "    mapped to bass: -",
        "    mapped elsewhere: -",
        "    fell to other: synthesizer 10",
        "  drums (10 stems, 10 right)",
        "    mapped to drums: drum kit 10",
        "    mapped elsewhere: -",
        "    fell to other: -",
        "  vocals (10 stems, 6 right)",
        "    mapped to vocals: singing 6",
        "    mapped elsewhere: drum kit 2 (drums)",
        "    fell to other: -",
        "    gated as speech: 2"]


def test_the_probe_stands_beside_the_oracle(tmp_path):
    """Embeddings that name each stem's category (plus noise): the probe gets them all."""
    rows = case_rows()
    write_case(tmp_path / "case.csv", rows=rows)
    categories = ["bass", "drums", "vocals"]
    rng = np.random.default_rng(0)
    vectors = np.eye(3)[[categories.index(row["label"]) for row in rows]] * 4
    np.savez(tmp_path / "emb.npz",
             embeddings=(vectors + rng.normal(0, 0.1, vectors.shape)).astype(np.float32),
             paths=np.array([row["path"] for row in rows]),
             labels=np.array([row["label"] for row in rows]),
             groups=np.array([row["group"] for row in rows]), tagger=np.array("ast"))
    result = computeaccuracy("case.csv", "--oracle", "--embeddings", "emb.npz", "--json",
                             "report.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = cells(section(result.stdout, "The map's share of the error")[:5])
    assert [row[:-1] for row in table] == ORACLE
    assert [row[-1] for row in table] == ["probe", "10 (100.00%)", "10 (100.00%)",
                                          "10 (100.00%)", "30 (100.00%)"]
    assert json.loads((tmp_path / "report.json").read_text())["total"] == 30


def test_bad_options_are_one_line(tmp_path):
    write_case(tmp_path / "case.csv")
    assert one_line_error(computeaccuracy("case.csv", "--embeddings", "e.npz", cwd=tmp_path)) \
        == "--embeddings goes with --oracle"
    assert one_line_error(computeaccuracy("case.csv", "--oracle", "--folds", "1",
                                          cwd=tmp_path)) == "--folds must be at least 2, not 1"
    assert one_line_error(computeaccuracy("case.csv", "--oracle", "--folds", "11",
                                          cwd=tmp_path)) == (
        "case.csv: --oracle: 11 folds need at least 11 groups, got 10 among the rows the "
        "tagger picked for (--folds sets the folds)")
    assert one_line_error(computeaccuracy("case.csv", "--map", "case.csv", cwd=tmp_path)) \
        .startswith("map case.csv: not valid TOML")
    (tmp_path / "m.toml").write_text('bass = ["Synthesizer"]\n')
    assert one_line_error(computeaccuracy("case.csv", "--map", "m.toml", cwd=tmp_path)) == (
        "case.csv: no kept scores case.csv.scores.npz beside it (the run was made before "
        "scores were kept, or they were moved), so its rows cannot be derived again with "
        "--map; run the evaluation again")
    assert one_line_error(computeaccuracy("case.csv", "case.csv", "--labels", cwd=tmp_path)) \
        == "--labels takes one FILE; several files give a leaderboard"


def test_the_published_rows_are_grouped_by_their_song_folders(tmp_path):
    """The published DSD100 rows have no group column and no kept scores: their songs come
    from their paths. The oracle is computed again here: GroupKFold over the song folders,
    each pick mapped to its most frequent category in the training songs (ties: the first
    by name), `other` for a pick no training song had."""
    from collections import Counter

    from sklearn.model_selection import GroupKFold

    from stemeval.scoring.published_rows import PUBLISHED_RESULTS

    path = PUBLISHED_RESULTS["dsd100"]
    result = computeaccuracy(path, "--oracle", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    truth = [row["label"].strip().lower() for row in rows]
    picks = [row["prediction"].strip().lower() for row in rows]
    songs = [row["path"].replace("\\", "/").split("/")[-2] for row in rows]
    assert len(set(songs)) == 100
    right = [False] * len(rows)
    for train, test in GroupKFold(n_splits=5, shuffle=True, random_state=0).split(
            rows, groups=songs):
        counts = {}
        for index in train:
            counts.setdefault(picks[index], Counter())[truth[index]] += 1
        for index in test:
            found = counts.get(picks[index])
            guess = min(found, key=lambda c: (-found[c], c)) if found else "other"
            right[index] = guess == truth[index]
    table = cells(section(result.stdout, "The map's share of the error")[:5])
    for line in table[1:]:
        chosen = [i for i, label in enumerate(truth) if line[0] in (label, "all")]
        mapped = sum(truth[i] == rows[i]["proposed_label"].strip().lower() for i in chosen)
        oracle = sum(right[i] for i in chosen)
        assert line[2] == f"{mapped} ({100 * mapped / len(chosen):.2f}%)"
        assert line[5] == f"{oracle} ({100 * oracle / len(chosen):.2f}%)"
    assert table[-1][5] == "292 (97.33%)"

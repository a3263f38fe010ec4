"""The statistics of the scoring reports, through computeaccuracy.py on constructed CSVs:
intervals over tracks (where the tracks come from), the leaderboard's paired tests and its
separation of runs on different stems, and one macro-F1 everywhere. Every number is computed
again here independently: the bootstrap by hand (tests/helpers/cluster_bootstrap.py, other
seeds and more resamples, so within Monte Carlo error), McNemar by statsmodels, F1 by
scikit-learn."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import f1_score
from statsmodels.stats.contingency_tables import mcnemar

from tests.helpers.cli import run_script
from tests.helpers.cluster_bootstrap import numpy_cluster_bootstrap

CATEGORIES = ("bass", "drums", "vocals")
SONGS = [f"{number:03d} - Song" for number in range(1, 31)]
TOLERANCE = 0.02  # the CLI's 2000 resamples against 20000 by hand: a few standard errors


def score(*args, cwd):
    return run_script("computeaccuracy.py", *args, cwd=cwd)


def write_run(path, rows, header=("label", "path", "prediction", "proposed_label"),
              sidecar=None):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    if sidecar is not None:
        Path(f"{path}.json").write_text(json.dumps(sidecar))
    return path


def dsd100_correct(seed):
    """Right (1) or wrong (0) per stem of 30 songs x 3 categories, songs mostly all right or
    mostly all wrong, so the stems of a song move together."""
    rng = np.random.default_rng(seed)
    p_right = np.repeat(np.where(np.arange(len(SONGS)) % 3 == 0, 0.15, 0.95), len(CATEGORIES))
    return (rng.random(p_right.size) < p_right).astype(int)


def dsd100_rows(correct, root="DSD100/Sources"):
    """DSD100 rows (label = file name, Dev folder) right where ``correct`` is 1."""
    stems = [(song, category) for song in SONGS for category in CATEGORIES]
    return [(category, f"{root}/Dev/{song}/{category}.wav", "x",
             category if right else "other") for (song, category), right in zip(stems, correct)]


def songs_of(rows):
    return np.array([row[1].split("/")[-2] for row in rows])


def by_hand(correct, groups, seed=1):
    return numpy_cluster_bootstrap(None, correct, groups, 0.95, 20000, seed)


# --- One file ------------------------------------------------------------------------------

def test_intervals_resample_the_songs_of_the_dsd100_layout(tmp_path):
    correct = dsd100_correct(seed=0)
    rows = dsd100_rows(correct)
    write_run(tmp_path / "run.csv", rows)
    result = score("run.csv", "--per-class", "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "r.json").read_text())["intervals"]
    songs = songs_of(rows)
    assert data["tracks"] == {"source": "the DSD100 layout, from each path", "known": True,
                              "count": 30}
    assert (data["level"], data["resamples"], data["seed"], data["error_rows"]) == (
        0.95, 2000, 0, 0)
    accuracy = data["accuracy"]
    assert (accuracy["value"], accuracy["stems"], accuracy["groups"]) == (
        correct.mean(), 90, 30)
    expected = by_hand(correct, songs)
    assert (accuracy["low"], accuracy["high"]) == pytest.approx(expected, abs=TOLERANCE)
    # the test can fail: stems resampled alone give a clearly narrower interval
    stems = scipy.stats.bootstrap((correct,), np.mean, n_resamples=20000, method="percentile",
                                  rng=np.random.default_rng(2)).confidence_interval
    assert stems.high - stems.low < 0.8 * (expected[1] - expected[0])
    labels = np.array([row[0] for row in rows])
    for category in CATEGORIES:
        mask = labels == category
        recall = data["recall"][category]
        assert (recall["value"], recall["stems"]) == (correct[mask].mean(), 30)
        assert (recall["low"], recall["high"]) == pytest.approx(  # a share of 30: one step
            by_hand(correct[mask], songs[mask]), abs=1 / 30 + 0.01)
    lines = result.stdout.splitlines()
    start = lines.index("95% intervals: percentile bootstrap over tracks (2000 resamples, seed "
                        "0); tracks: the DSD100 layout, from each path:")
    assert lines[start + 2].split() == [
        "accuracy", f"{100 * accuracy['value']:.2f}", f"[{100 * accuracy['low']:.2f},",
        f"{100 * accuracy['high']:.2f}]", "90", "30"]
    assert lines[start + 6] == "Stems scored: 90, of which error rows (stems that failed, " \
                               "scored as misses): 0"


def test_the_group_column_comes_first(tmp_path):
    """--details rows: their group column (here five songs to a group) is what is resampled."""
    correct = dsd100_correct(seed=3)
    rows = [row + ("0.5", "1.0", "", "", f"album{index // 15}")
            for index, row in enumerate(dsd100_rows(correct))]
    write_run(tmp_path / "run.csv", rows, header=("label", "path", "prediction",
                                                  "proposed_label", "score", "speech_score",
                                                  "top5", "error", "group"))
    result = score("run.csv", "--stats", "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "r.json").read_text())["intervals"]
    assert data["tracks"] == {"source": "the group column", "known": True, "count": 6}
    groups = np.array([row[-1] for row in rows])
    assert (data["accuracy"]["low"], data["accuracy"]["high"]) == pytest.approx(
        by_hand(correct, groups), abs=TOLERANCE)
    assert "tracks: the group column:" in result.stdout


def test_without_tracks_each_stem_is_its_own_and_it_is_said(tmp_path):
    rng = np.random.default_rng(4)
    correct = (rng.random(120) < 0.7).astype(int)
    write_run(tmp_path / "run.csv", [("piano", f"clips/{index}.wav", "x",
                                      "piano" if right else "organ")
                                     for index, right in enumerate(correct)])
    result = score("run.csv", "--stats", "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "r.json").read_text())["intervals"]
    assert not data["tracks"]["known"] and data["tracks"]["count"] == 120
    assert data["tracks"]["source"].startswith("unknown (no group column, and no known layout; "
                                               "--details writes the group column): each stem "
                                               "is its own track")
    stems = scipy.stats.bootstrap((correct,), np.mean, n_resamples=20000, method="percentile",
                                  rng=np.random.default_rng(5)).confidence_interval
    assert (data["accuracy"]["low"], data["accuracy"]["high"]) == pytest.approx(
        (stems.low, stems.high), abs=TOLERANCE)
    assert "each stem is its own track" in result.stdout


def test_the_sidecars_layout_gives_the_rule(tmp_path):
    """IRMAS excerpts of one recording share its name up to the final __<n>: one track."""
    rows = [("cel", f"IRMAS-TrainingData/cel/00{recording}__[cel][nod][cla]00{recording}__"
                    f"{excerpt}.wav", "cello", "cel" if excerpt else "vio")
            for recording in range(4) for excerpt in range(3)]
    write_run(tmp_path / "run.csv", rows, sidecar={"identity": {"dataset": "irmas"}})
    result = score("run.csv", "--stats", "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "r.json").read_text())["intervals"]
    assert data["tracks"] == {"source": "the IRMAS (training data) layout, from each path",
                              "known": True, "count": 4}
    assert data["accuracy"]["groups"] == 4 and data["accuracy"]["value"] == pytest.approx(2 / 3)


def test_one_track_has_no_interval(tmp_path):
    write_run(tmp_path / "run.csv", [(category, f"Dev/Only song/{category}.wav", "x", category)
                                     for category in CATEGORIES])
    result = score("run.csv", "--stats", "--json", "r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    accuracy = json.loads((tmp_path / "r.json").read_text())["intervals"]["accuracy"]
    assert (accuracy["low"], accuracy["high"], accuracy["groups"]) == (None, None, 1)
    assert "  (-: the stems are of one track, there is nothing to resample)" in \
        result.stdout.splitlines()


def test_macro_f1_is_one_definition_with_the_all_labels_variant_named(tmp_path):
    """`other` is proposed but never the ground truth: it is no class of macro-F1."""
    rows = dsd100_rows(dsd100_correct(seed=6))
    write_run(tmp_path / "a.csv", rows)
    write_run(tmp_path / "b.csv", dsd100_rows(dsd100_correct(seed=7)))
    single = score("a.csv", "--per-class", "--json", "a.json", cwd=tmp_path)
    board = score("a.csv", "b.csv", "--json", "board.json", cwd=tmp_path)
    assert single.returncode == board.returncode == 0
    truth, proposed = [row[0] for row in rows], [row[3] for row in rows]
    macro_f1 = f1_score(truth, proposed, labels=sorted(set(truth)), average="macro")
    all_labels = f1_score(truth, proposed, labels=sorted(set(truth) | set(proposed)),
                          average="macro")
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["macro_f1_ground_truth_labels"] == pytest.approx(macro_f1, abs=1e-12)
    assert report["macro_f1"] == pytest.approx(all_labels, abs=1e-12)  # the key kept as it was
    leaderboard = json.loads((tmp_path / "board.json").read_text())["leaderboard"]
    assert leaderboard[0]["macro_f1"] == pytest.approx(macro_f1, abs=1e-12)
    assert f"Macro-F1: {all_labels:.4f} (mean over the 4 categories above; {macro_f1:.4f} " \
           f"over the 3 ground-truth categories)" in single.stdout.splitlines()


# --- Several files -------------------------------------------------------------------------

def two_runs(tmp_path):
    """Run A, and run B on a copy of DSD100 elsewhere that fixes many of A's misses and
    breaks a few of its hits; the stems match by their path below the dataset root."""
    a = dsd100_correct(seed=0)
    rng = np.random.default_rng(8)
    b = np.where(a == 0, rng.random(a.size) < 0.6, rng.random(a.size) > 0.08).astype(int)
    write_run(tmp_path / "a.csv", dsd100_rows(a), sidecar={"tagger": "ast"})
    write_run(tmp_path / "b.csv", dsd100_rows(b, root="/copy/of/DSD100/Sources"),
              sidecar={"tagger": "passt"})
    return a, b, songs_of(dsd100_rows(a))


def test_two_runs_on_the_same_stems_get_mcnemar_and_a_paired_interval(tmp_path):
    a, b, songs = two_runs(tmp_path)
    plain = score("a.csv", "b.csv", cwd=tmp_path)
    result = score("a.csv", "b.csv", "--stats", "--json", "board.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == plain.stdout.splitlines()  # the table as without --stats
    board = json.loads((tmp_path / "board.json").read_text())
    [stem_set] = board["stem_sets"]
    assert (stem_set["runs"], stem_set["stems"], stem_set["dataset"]) == (
        ["ast", "passt"], 90, "dsd100")
    [pair] = stem_set["paired"]
    table = {"both_right": int(np.sum((a == 1) & (b == 1))),
             "broken": int(np.sum((a == 1) & (b == 0))),
             "fixed": int(np.sum((a == 0) & (b == 1))),
             "both_wrong": int(np.sum((a == 0) & (b == 0)))}
    assert {key: pair[key] for key in table} == table
    assert table["fixed"] > 10 and table["broken"] > 2
    oracle = mcnemar([[table["both_right"], table["broken"]],
                      [table["fixed"], table["both_wrong"]]], exact=True).pvalue
    assert pair["p_value"] == pytest.approx(oracle, rel=1e-9)
    assert pair["difference"] == pytest.approx(b.mean() - a.mean(), abs=1e-12)
    assert (pair["low"], pair["high"]) == pytest.approx(
        numpy_cluster_bootstrap(a, b, songs, 0.95, 20000, seed=9), abs=TOLERANCE)
    for run, correct in zip(board["leaderboard"], (a, b)):
        interval = run["intervals"]["accuracy"]
        assert (run["total"], run["errors"], interval["value"]) == (90, 0, correct.mean())
        assert (interval["low"], interval["high"]) == pytest.approx(by_hand(correct, songs),
                                                                    abs=TOLERANCE)
    row = next(line for line in lines if line.startswith("  ast  ") and "passt" in line)
    assert row.split()[2:8] == [str(table["fixed"]), str(table["broken"]),
                                str(table["both_right"]), str(table["both_wrong"]),
                                f"{oracle:.4f}", f"{100 * (b.mean() - a.mean()):+.2f}"]


def test_runs_on_different_stems_are_ranked_apart(tmp_path):
    """A DSD100 run and a run on its copy (set 1), a MoisesDB run (set 2) and a run on the
    first ten songs only (set 3), the best of all: it is marked best in its own set only."""
    two_runs(tmp_path)
    write_run(tmp_path / "moises.csv",
              [(category, f"moisesdb_v0.1/song{index}/{category}/{index}.wav", "x", category)
               for index in range(4) for category in ("bass", "guitar")])
    write_run(tmp_path / "dev10.csv", [row for row in dsd100_rows(np.ones(90, int))[:30]])
    result = score("a.csv", "b.csv", "moises.csv", "dev10.csv", "--stats", "--json",
                   "board.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    board = json.loads((tmp_path / "board.json").read_text())
    assert [(entry["runs"], entry["stems"], entry["dataset"]) for entry in board["stem_sets"]] \
        == [(["ast", "passt"], 90, "dsd100"), (["moises"], 8, "moisesdb"),
            (["dev10"], 30, "dsd100")]
    assert [len(entry["paired"]) for entry in board["stem_sets"]] == [1, 0, 0]
    assert board["best"]["accuracy"] == ["passt", "moises", "dev10"]
    lines = result.stdout.splitlines()
    assert lines[1].startswith("note: these runs were not all made on the same stems")
    assert lines[3] == "Stem set 1: 2 run(s) on the same 90 stems (DSD100):"
    heading = lines.index("Stem set 3: 1 run(s) on the same 30 stems (DSD100):")
    assert lines[heading + 1].split()[:4] == ["run", "accuracy", "balanced", "acc."]
    assert lines[heading + 2].split()[:2] == ["dev10", "100.00*"]
    assert sum("ast" in line and "passt" in line for line in lines) == 1  # one paired row


def test_error_rows_are_said(tmp_path):
    rows = dsd100_rows(np.ones(90, int))
    rows[:3] = [(label, path, "error", "error") for label, path, _, _ in rows[:3]]
    write_run(tmp_path / "e.csv", rows)
    write_run(tmp_path / "f.csv", dsd100_rows(np.ones(90, int)))
    plain = score("e.csv", "f.csv", cwd=tmp_path)
    assert plain.stdout.splitlines()[-1] == (
        "note: error rows (stems that failed) are scored as misses (e: 3; --stats shows every "
        "run's stems and error rows)")
    stats = score("e.csv", "f.csv", "--stats", cwd=tmp_path)
    rows = [line.split() for line in stats.stdout.splitlines() if line.startswith("  e ")]
    assert rows[1][:4] == ["e", "90", "3", f"{100 * 87 / 90:.2f}"]

"""computeaccuracy.py with several files: the leaderboard on three hand-made CSVs, whose
numbers are counted by hand below."""

import csv
import json

from tests.helpers.cli import run_script

B, D, V = "bass", "drums", "vocals"
RUNS = {
    # file: (sidecar tagger or None, [(label, proposed label), ...])
    "a.csv": ("ast", [(B, B), (B, B), (B, "other"), (D, D), (D, D), (V, V), (V, "speech"),
                      (V, V)]),
    "b.csv": ("panns-cnn14", [(B, B), (B, B), (B, B), (D, D), (D, B), (V, D), (V, V), (V, V)]),
    "c_run.csv": (None, [(B, "other"), (B, "other"), (B, B), (D, D), (D, D), (V, V), (V, V),
                         (V, "speech")]),
}


def write_runs(folder):
    for name, (tagger, rows) in RUNS.items():
        with open(folder / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["label", "path", "prediction", "proposed_label"])
            for index, (label, proposed) in enumerate(rows):
                writer.writerow([label, f"s{index}/{label}.wav", proposed, proposed])
        if tagger:
            (folder / f"{name}.json").write_text(json.dumps({"tagger": tagger}))
    return [str(folder / name) for name in RUNS]


def score(*args, cwd):
    return run_script("computeaccuracy.py", *args, cwd=cwd)


def test_leaderboard_of_three_runs_equals_hand_counts(tmp_path):
    files = write_runs(tmp_path)
    result = score(*files, "--json", "board.json", "--plot", "board.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # a: 6/8; recall bass 2/3, drums 2/2, vocals 2/3; F1 bass 0.8 (P 2/2), drums 1, vocals 0.8
    # b: 6/8; recall 3/3, 1/2, 2/3; F1 bass 6/7 (P 3/4), drums 1/2 (P 1/2), vocals 0.8
    # c: 5/8; recall 1/3, 2/2, 2/3; F1 bass 0.5 (P 1/1), drums 1, vocals 0.8
    assert result.stdout.splitlines() == [
        "Leaderboard (percent; recall per ground-truth category; * best in its column):",
        "  run          accuracy  balanced acc.  macro-F1     bass    drums  vocals",
        "  ast            75.00*         77.78*    86.67*   66.67   100.00*  66.67*",
        "  panns-cnn14    75.00*         72.22     71.90   100.00*   50.00   66.67*",
        "  c_run          62.50          66.67     76.67    33.33   100.00*  66.67*",
        "Leaderboard plot written to board.png",
        "JSON leaderboard written to board.json",
    ]
    board = json.loads((tmp_path / "board.json").read_text())
    expected = [
        ("ast", 6, 0.75, (2 / 3 + 1 + 2 / 3) / 3, (0.8 + 1 + 0.8) / 3, [2 / 3, 1, 2 / 3]),
        ("panns-cnn14", 6, 0.75, (1 + 0.5 + 2 / 3) / 3, (6 / 7 + 0.5 + 0.8) / 3,
         [1, 0.5, 2 / 3]),
        ("c_run", 5, 0.625, (1 / 3 + 1 + 2 / 3) / 3, (0.5 + 1 + 0.8) / 3, [1 / 3, 1, 2 / 3]),
    ]
    for run, (name, matches, accuracy, balanced, macro_f1, recall) in zip(board["leaderboard"],
                                                                          expected):
        assert (run["name"], run["matches"], run["total"]) == (name, matches, 8)
        assert abs(run["accuracy"] - accuracy) < 1e-12
        assert abs(run["balanced_accuracy"] - balanced) < 1e-12
        assert abs(run["macro_f1"] - macro_f1) < 1e-12
        assert all(abs(run["recall"][c] - value) < 1e-12 for c, value in zip((B, D, V), recall))
    assert board["best"]["accuracy"] == ["ast", "panns-cnn14"]
    assert board["best"]["drums"] == ["ast", "c_run"]
    assert (tmp_path / "board.png").read_bytes()[:4] == b"\x89PNG"


def test_one_file_keeps_the_published_output_and_options_that_need_one(tmp_path):
    files = write_runs(tmp_path)
    single = score(files[0], cwd=tmp_path)
    assert single.returncode == 0
    assert "Accuracy: 75.00% (6/8 matches)" in single.stdout.splitlines()
    refused = score(*files[:2], "--per-class", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == ("error: --per-class takes one FILE; several files give a "
                              "leaderboard\n")


def test_same_tagger_twice_is_told_apart_by_file_name(tmp_path):
    files = write_runs(tmp_path)
    (tmp_path / "b.csv.json").write_text(json.dumps({"tagger": "ast"}))
    result = score(*files[:2], cwd=tmp_path)
    assert [line.split()[:2] for line in result.stdout.splitlines()[2:4]] == [
        ["ast", "(a)"], ["ast", "(b)"]]

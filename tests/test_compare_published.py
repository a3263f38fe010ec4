"""computeaccuracy.py --compare published: a run's rows against the shipped published rows,
matched by the path below the dataset root whatever folder the run was given."""

import csv
import json

import pytest

from stemeval.scoring.published_rows import PUBLISHED_RESULTS, below_root, dataset_of
from tests.helpers.cli import ROOT, run_script

# The published paths' roots, and other places a copy of the same dataset may be.
ROOTS = {"dsd100": "DSD100/Sources/", "moisesdb": "moisesdb/moisesdb_v0.1/"}
OTHER_ROOTS = {"dsd100": ["/data/copies/DSD100/Sources/", "dsd/", "C:\\Music\\DSD100\\Sources\\"],
               "moisesdb": ["/mnt/moises-v0.1/", "./", "D:\\moisesdb\\moisesdb_v0.1\\"]}


def run(*args):
    return run_script("computeaccuracy.py", *args, cwd=ROOT)


def published_rows(dataset):
    with open(PUBLISHED_RESULTS[dataset], newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path, rows, root):
    """Write ``rows`` with every path moved from the published root to ``root``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["label", "path", "prediction",
                                                    "proposed_label"])
        writer.writeheader()
        for row in rows:
            below = row["path"].removeprefix(ROOTS[row_dataset(row)])
            separator = "\\" if "\\" in root else "/"
            writer.writerow({**row, "path": root + below.replace("/", separator)})
    return path


def row_dataset(row):
    return "dsd100" if row["path"].startswith(ROOTS["dsd100"]) else "moisesdb"


def value(lines, prefix):
    return next(line for line in lines if line.startswith(prefix))[len(prefix):]


@pytest.mark.parametrize("dataset", sorted(PUBLISHED_RESULTS))
def test_published_rows_have_unique_stems_below_the_root(dataset):
    rows = published_rows(dataset)
    assert all(row["path"].startswith(ROOTS[dataset]) for row in rows)
    assert dataset_of(rows) == dataset
    keys = [below_root(row["path"]) for row in rows]
    assert keys == [row["path"][len(ROOTS[dataset]):] for row in rows]
    assert len(set(keys)) == len(rows)


@pytest.mark.parametrize("dataset,total", [("dsd100", 300), ("moisesdb", 2542)])
def test_a_copy_elsewhere_matches_every_row(tmp_path, dataset, total):
    rows = published_rows(dataset)
    for index, root in enumerate(OTHER_ROOTS[dataset]):
        mine = write_rows(tmp_path / f"mine{index}.csv", rows, root)
        result = run(mine, "--compare", "published")
        assert (result.returncode, result.stderr) == (0, ""), root
        lines = result.stdout.splitlines()
        assert value(lines, "  Rows matched: ").startswith(f"{total} ")
        assert value(lines, "  Rows identical: ") == str(total)
        assert value(lines, "  Rows that differ: ") == "0"
        assert value(lines, "  Stems only in published: ") == "0"
        assert value(lines, "  Stems only in mine: ") == "0"
        # Two local runs on copies in different places match the same way.
        other = write_rows(tmp_path / f"other{index}.csv", rows[::-1], OTHER_ROOTS[dataset][0])
        lines = run(mine, "--compare", other).stdout.splitlines()
        assert f"Comparison of {mine} (A) with {other} (B), rows matched by the path below " \
               f"the dataset root:" in lines
        assert value(lines, "  Rows identical: ") == str(total)
        assert value(lines, "  Stems only in A: ") == "0"


# Three rows changed by hand: (row index, new proposed label).
CHANGES = {"dsd100": [(0, "other"), (1, "bass"), (2, "vocals")],
           "moisesdb": [(0, "guitar"), (5, "wind"), (7, "piano")]}


@pytest.mark.parametrize("dataset", sorted(CHANGES))
def test_three_changed_rows_are_reported(tmp_path, dataset):
    rows = published_rows(dataset)
    changed = [dict(row) for row in rows]
    for index, proposed in CHANGES[dataset]:
        assert changed[index]["proposed_label"] != proposed
        changed[index]["proposed_label"] = proposed
    mine = write_rows(tmp_path / "mine.csv", changed, "/elsewhere/")
    result = run(mine, "--compare", "published", "--json", tmp_path / "r.json")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()

    def right(row_list):
        return sum(row["label"].strip().lower() == row["proposed_label"].strip().lower()
                   for row in row_list)

    total, before, after = len(rows), right(rows), right(changed)
    assert value(lines, "  published: ") == \
        f"Accuracy: {before / total * 100:.2f}% ({before}/{total} matches)"
    assert value(lines, "  mine:      ") == \
        f"Accuracy: {after / total * 100:.2f}% ({after}/{total} matches)"
    assert value(lines, "  Rows identical: ") == str(total - 3)
    assert value(lines, "  Rows that differ: ") == "3"
    start = lines.index("  Rows that differ: 3")
    for offset, (index, proposed) in enumerate(CHANGES[dataset]):
        row = rows[index]
        key = row["path"][len(ROOTS[dataset]):]
        head, was, now = lines[start + 1 + 3 * offset:start + 4 + 3 * offset]
        assert head.endswith(f"] {key} (expected {row['label']})")
        assert was == f"      published: prediction {row['prediction']}, " \
                      f"proposed {row['proposed_label']}"
        assert now == f"      mine:      prediction {row['prediction']}, proposed {proposed}"
    assert lines[start + 10] == "  Stems only in published: 0"
    compared = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["compare"]
    assert [entry["path"] for entry in compared["differ"]] == [
        rows[index]["path"][len(ROOTS[dataset]):] for index, _ in CHANGES[dataset]]
    assert compared["accuracy_b"]["matches"] == after
    assert compared["a"] == f"reference/{PUBLISHED_RESULTS[dataset].name}"


def test_only_in_one_file_and_a_status_each(tmp_path):
    rows = published_rows("dsd100")
    mine = [dict(row) for row in rows[:-2]]  # two stems missing, one extra
    mine.append({"label": "bass", "path": "DSD100/Sources/Dev/999 - New/bass.wav",
                 "prediction": "bass guitar", "proposed_label": "bass"})
    wrong = next(i for i, row in enumerate(mine) if row["proposed_label"] != row["label"])
    mine[wrong] = {**mine[wrong], "prediction": "bass guitar",
                   "proposed_label": mine[wrong]["label"]}
    mine[0] = {**mine[0], "prediction": "speech", "proposed_label": "other"}
    result = run(write_rows(tmp_path / "mine.csv", mine, "x/"), "--compare", "published")
    lines = result.stdout.splitlines()
    assert lines[lines.index("  Rows that differ: 2") + 1].startswith("    [broke] ")
    assert lines[lines.index("  Rows that differ: 2") + 4].startswith("    [fixed] ")
    start = lines.index("  Stems only in published: 2")
    assert lines[start + 1:start + 5] == [
        "    " + rows[-2]["path"][len(ROOTS["dsd100"]):],
        "    " + rows[-1]["path"][len(ROOTS["dsd100"]):],
        "  Stems only in mine: 1", "    Dev/999 - New/bass.wav"]


@pytest.mark.parametrize("rows,fragment", [
    ([("drums", "a.wav", "drum", "drums")], "--compare published needs the rows of a DSD100 "
                                            "or MoisesDB run"),
    ([("drums", "x/y/song/kick.wav", "drum", "drums")], "this file's rows are neither"),
    ([("bass", "musdb18hq/train/A - B/bass.wav", "bass guitar", "bass")],  # not DSD100's
     "this file's rows are neither"),
    ([], "this file's rows are neither"),
])
def test_neither_dataset_is_one_line(tmp_path, rows, fragment):
    path = tmp_path / "r.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "path", "prediction", "proposed_label"])
        writer.writerows(rows)
    result = run(path, "--compare", "published")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"error: {path}: ") and fragment in result.stderr


def test_two_datasets_are_not_compared():
    result = run(PUBLISHED_RESULTS["dsd100"], "--compare", PUBLISHED_RESULTS["moisesdb"])
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"error: cannot compare {PUBLISHED_RESULTS['dsd100']} with "
                             f"{PUBLISHED_RESULTS['moisesdb']}: the first holds DSD100 rows, "
                             f"the second MoisesDB rows\n")

"""computeaccuracy.py run as users run it: accuracy, mismatches, metrics, plot, JSON, compare."""

import csv
import json
import os
import subprocess
import sys

import pytest

from stemeval.scoring.published_rows import PUBLISHED_RESULTS
from tests.helpers.cli import ROOT, run_script

SCRIPT = "computeaccuracy.py"
HEADER = "label,path,prediction,proposed_label\n"


def run(*args):
    """The script run in this process as its own would run it (tests/helpers/cli.py)."""
    return run_script(SCRIPT, *args, cwd=ROOT)


def reference_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr


def mismatch_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("  expected ")]


# --- The published numbers -----------------------------------------------------------------

@pytest.fixture(scope="module")
def dsd100_full(tmp_path_factory):
    """One run on the DSD100 reference with every output option."""
    out = tmp_path_factory.mktemp("dsd100")
    result = run(PUBLISHED_RESULTS["dsd100"], "--per-class",
                 "--plot", out / "cm.png", "--json", out / "report.json")
    assert result.returncode == 0, result.stderr
    return result, out


@pytest.fixture(scope="module")
def moises_full(tmp_path_factory):
    out = tmp_path_factory.mktemp("moises")
    result = run(PUBLISHED_RESULTS["moisesdb"], "--json", out / "report.json")
    assert result.returncode == 0, result.stderr
    return result, json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("dataset, first_line, mismatches", [
    ("dsd100", "Accuracy: 92.00% (276/300 matches)", 24),
    ("moisesdb", "Accuracy: 87.29% (2219/2542 matches)", 323),
])
def test_compact_accuracy_and_every_mismatch(dataset, first_line, mismatches):
    path = PUBLISHED_RESULTS[dataset]
    result = run(path, "--format", "compact")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == first_line
    assert lines[1] == f"Mismatches ({mismatches}):"
    printed = mismatch_lines(result.stdout)
    assert len(printed) == mismatches
    wrong = [row for row in reference_rows(path)
             if row["label"].strip().lower() != row["proposed_label"].strip().lower()]
    for line, row in zip(printed, wrong):
        assert line == (f"  expected {row['label']}, proposed {row['proposed_label']} "
                        f"(prediction: {row['prediction']})  {row['path']}")


def test_plain_run_imports_no_heavy_library():
    # a fresh process: what a plain run imports
    code = ("import sys, computeaccuracy; computeaccuracy.main([sys.argv[1]]); "
            "print([m for m in ('numpy', 'sklearn', 'matplotlib') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code, str(PUBLISHED_RESULTS["dsd100"])],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_dsd100_per_class_text(dsd100_full):
    result, _ = dsd100_full
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:2] == ["", "Accuracy: 92.00% (276/300 matches)"]
    rows = {line.split()[0]: line for line in lines if line.startswith("  ") and
            line.split()[0] in {"bass", "drums", "vocals", "other"} and "(" in line}
    assert "1.00 (100/100)" in rows["drums"]
    assert "0.89 (89/100)" in rows["vocals"]
    assert "0.87 (87/100)" in rows["bass"]
    assert "Balanced accuracy: 92.00% (mean recall over the 3 ground-truth categories)" in lines
    start = lines.index("Confusion matrix (rows: ground truth, columns: proposed label):")
    assert lines[start + 1].split()[-4:] == ["bass", "drums", "other", "vocals"]
    assert lines[start + 2].split() == ["bass", "87", "0", "13", "0"]
    assert lines[start + 3].split() == ["drums", "0", "100", "0", "0"]
    assert lines[start + 4].split() == ["other", "0", "0", "0", "0"]
    assert lines[start + 5].split() == ["vocals", "0", "0", "11", "89"]


def test_dsd100_json(dsd100_full):
    _, out = dsd100_full
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert (data["matches"], data["total"]) == (276, 300)
    assert data["accuracy"] == pytest.approx(0.92)
    assert len(data["mismatches"]) == 24
    assert set(data["mismatches"][0]) == {"label", "path", "prediction", "proposed_label"}
    per_class = data["per_class"]
    assert (per_class["drums"]["correct"], per_class["drums"]["support"]) == (100, 100)
    assert per_class["drums"]["recall"] == pytest.approx(1.00)
    assert per_class["vocals"]["recall"] == pytest.approx(0.89)
    assert per_class["bass"]["recall"] == pytest.approx(0.87)
    assert per_class["other"]["recall"] is None  # 0/0: never the ground truth
    assert per_class["other"]["predicted"] == 24
    assert data["balanced_accuracy"] == pytest.approx(0.92)
    f1_vocals, f1_bass = 2 * 0.89 / 1.89, 2 * 0.87 / 1.87
    assert data["macro_f1"] == pytest.approx((1 + f1_vocals + f1_bass + 0) / 4)
    assert data["macro_f1_ground_truth_labels"] == pytest.approx((1 + f1_vocals + f1_bass) / 3)
    matrix = data["confusion_matrix"]
    assert matrix["labels"] == data["labels"] == ["bass", "drums", "other", "vocals"]
    assert matrix["matrix"] == [[87, 0, 13, 0], [0, 100, 0, 0], [0, 0, 0, 0], [0, 0, 11, 89]]


def test_moises_per_category_counts(moises_full):
    result, data = moises_full
    assert result.stdout.splitlines()[1] == "Accuracy: 87.29% (2219/2542 matches)"
    published = {
        "drums": (910, 921), "guitar": (420, 436), "vocals": (346, 378), "bass": (183, 275),
        "other_keys": (102, 191), "piano": (111, 131), "percussion": (91, 125),
        "bowed_strings": (27, 49), "wind": (25, 29), "other_plucked": (4, 7),
    }
    got = {label: (values["correct"], values["support"])
           for label, values in data["per_class"].items() if values["support"]}
    assert got == published
    assert (data["matches"], data["total"], len(data["mismatches"])) == (2219, 2542, 323)
    for label, (correct, support) in published.items():
        assert data["per_class"][label]["recall"] == pytest.approx(correct / support)


def test_dsd100_plot(dsd100_full):
    import matplotlib.image

    _, out = dsd100_full
    pixels = matplotlib.image.imread(out / "cm.png")
    assert pixels.shape[:2] == (500, 600)  # 6 x 5 inches at 100 dpi for 4 categories
    flat = pixels.reshape(-1, pixels.shape[2])
    assert (flat != flat[0]).any()
    assert len({tuple(pixel) for pixel in flat[::97]}) > 10


def test_plot_grows_with_the_number_of_classes(tmp_path):
    import matplotlib.image

    result = run(PUBLISHED_RESULTS["moisesdb"], "--plot", tmp_path / "cm.png")
    assert result.returncode == 0, result.stderr
    assert matplotlib.image.imread(tmp_path / "cm.png").shape[:2] == (800, 850)  # 11 classes


# --- Hand-counted per-class metrics --------------------------------------------------------

HAND = [  # label, proposed_label
    (" Bass", "bass "), ("bass", "BASS"), ("bass", "drums"), ("bass", "bass"),
    ("drums", "drums"), ("drums", "drums"), ("drums", "vocals"),
    ("vocals", "vocals"), ("vocals", "drums"), ("vocals", "vocals"),
]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write(header)
        csv.writer(handle).writerows(rows)
    return path


def test_per_class_hand_counted(tmp_path):
    source = write_csv(tmp_path / "hand.csv",
                       [(label, f"s{i}.wav", "x", proposed) for i, (label, proposed) in enumerate(HAND)])
    result = run(source, "--per-class", "--json", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "Accuracy: 70.00% (7/10 matches)"
    # Confusion (rows truth, columns proposed; bass, drums, vocals):
    #   bass [3 1 0], drums [0 2 1], vocals [0 1 2]; proposed: bass 3, drums 4, vocals 3.
    # precision 3/3, 2/4, 2/3; recall 3/4, 2/3, 2/3
    # F1 bass 2*1*0.75/1.75 = 6/7, drums 2*0.5*(2/3)/(7/6) = 4/7, vocals 2/3
    # macro-F1 = (6/7 + 4/7 + 2/3) / 3 = 44/63 = 0.6984; balanced = (3/4+2/3+2/3)/3 = 25/36
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["labels"] == ["bass", "drums", "vocals"]
    expected = {
        "bass": (1.0, 0.75, 0.857142857, 4, 3, 3),
        "drums": (0.5, 0.666666667, 0.571428571, 3, 2, 4),
        "vocals": (0.666666667, 0.666666667, 0.666666667, 3, 2, 3),
    }
    for label, (precision, recall, f1, support, correct, predicted) in expected.items():
        got = data["per_class"][label]
        assert got["precision"] == pytest.approx(precision)
        assert got["recall"] == pytest.approx(recall)
        assert got["f1"] == pytest.approx(f1)
        assert (got["support"], got["correct"], got["predicted"]) == (support, correct, predicted)
    assert data["macro_f1"] == pytest.approx(0.698412698)
    assert data["macro_f1_ground_truth_labels"] == pytest.approx(0.698412698)
    assert data["balanced_accuracy"] == pytest.approx(0.694444444)
    assert data["confusion_matrix"]["matrix"] == [[3, 1, 0], [0, 2, 1], [0, 1, 2]]
    assert "Macro-F1: 0.6984 (mean over the 3 categories above; 0.6984 over the 3 ground-truth categories)" in lines
    assert "Balanced accuracy: 69.44% (mean recall over the 3 ground-truth categories)" in lines
    table = {line.split()[0]: line.split() for line in lines
             if line.startswith("  ") and line.split()[0] in expected and "(" in line}
    assert table["bass"] == ["bass", "1.00", "(3/3)", "0.75", "(3/4)", "0.86", "4"]
    assert table["drums"] == ["drums", "0.50", "(2/4)", "0.67", "(2/3)", "0.57", "3"]
    assert table["vocals"] == ["vocals", "0.67", "(2/3)", "0.67", "(2/3)", "0.67", "3"]


# --- Comparing two runs --------------------------------------------------------------------

def test_compare(tmp_path):
    old = write_csv(tmp_path / "old.csv", [
        ("drums", "a.wav", "drum kit", "drums"),
        ("bass", "b.wav", "guitar", "other"),
        ("vocals", "c.wav", "singing", "vocals"),
        ("bass", "d.wav", "bass guitar", "bass"),
        ("drums", "e.wav", "speech", "other"),
    ])
    new = write_csv(tmp_path / "new.csv", [  # another order, --details columns, one path each side
        ("bass", "b.wav", "bass guitar", "Bass", "0.9", "1.0", "", ""),
        ("drums", "a.wav", "drum", "drums", "0.8", "1.0", "", ""),
        ("vocals", "c.wav", "speech", "other", "0.7", "60.0", "", ""),
        ("drums", "e.wav", "theremin", "other_keys", "0.1", "1.0", "", ""),
        ("guitar", "f.wav", "guitar", "guitar", "0.9", "1.0", "", ""),
    ], header="label,path,prediction,proposed_label,score,speech_score,top5,error\n")
    result = run(old, "--compare", new, "--json", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "Accuracy: 60.00% (3/5 matches)"
    start = lines.index(f"Comparison of {old} (A) with {new} (B), rows matched by path:")
    assert lines[start + 1:] == [
        "  A: Accuracy: 60.00% (3/5 matches)",
        "  B: Accuracy: 60.00% (3/5 matches)",
        "  Rows matched: 4 (A 50.00% (2/4), B 50.00% (2/4))",
        "  Rows identical: 0",
        "  Rows that differ: 4",
        "    [prediction] a.wav (expected drums)",
        "      A: prediction drum kit, proposed drums",
        "      B: prediction drum, proposed drums",
        "    [fixed] b.wav (expected bass)",
        "      A: prediction guitar, proposed other",
        "      B: prediction bass guitar, proposed bass",
        "    [broke] c.wav (expected vocals)",
        "      A: prediction singing, proposed vocals",
        "      B: prediction speech, proposed other",
        "    [changed] e.wav (expected drums)",
        "      A: prediction speech, proposed other",
        "      B: prediction theremin, proposed other_keys",
        "  Stems only in A: 1",
        "    d.wav",
        "  Stems only in B: 1",
        "    f.wav",
        f"JSON report written to {tmp_path / 'r.json'}",
    ]
    compared = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["compare"]
    assert [entry["path"] for entry in compared["differ"]] == ["a.wav", "b.wav", "c.wav", "e.wav"]
    assert [entry["status"] for entry in compared["differ"]] == [
        "prediction", "fixed", "broke", "changed"]
    assert (compared["only_in_a"], compared["only_in_b"]) == (["d.wav"], ["f.wav"])
    assert compared["accuracy_b"] == {"matches": 3, "total": 5, "accuracy": 0.6}
    assert (compared["a"], compared["b"], compared["matched_by"]) == (str(old), str(new), "path")


def test_compare_identical_runs(tmp_path):
    rows = [("drums", "a.wav", "drum kit", "drums"), ("bass", "b.wav", "guitar", "other")]
    one, two = write_csv(tmp_path / "1.csv", rows), write_csv(tmp_path / "2.csv", rows)
    lines = run(one, "--compare", two).stdout.splitlines()
    assert "  Rows identical: 2" in lines and "  Rows that differ: 0" in lines
    assert "  Stems only in A: 0" in lines and "  Stems only in B: 0" in lines


# --- Bad input -----------------------------------------------------------------------------

@pytest.fixture
def small(tmp_path):
    return write_csv(tmp_path / "small.csv", [("drums", "a.wav", "drum", "drums")])


@pytest.mark.parametrize("case", [
    "empty file with metrics", "header only with a plot", "wrong columns",
    "unknown option", "plot folder missing", "json folder missing",
    "plot is a folder", "json is a folder", "plot format unknown", "json over the input",
    "compare file missing", "compare wrong columns",
])
def test_bad_input_is_one_line(case, tmp_path, small):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text(HEADER)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("label,file,guess\ndrums,a.wav,drum\n")
    args = {
        "empty file with metrics": [empty, "--per-class"],
        "header only with a plot": [header_only, "--plot", tmp_path / "cm.png"],
        "wrong columns": [wrong],
        "unknown option": [small, "--bogus"],
        "plot folder missing": [small, "--plot", tmp_path / "no" / "cm.png"],
        "json folder missing": [small, "--json", tmp_path / "no" / "r.json"],
        "plot is a folder": [small, "--plot", tmp_path],
        "json is a folder": [small, "--json", tmp_path],
        "plot format unknown": [small, "--plot", tmp_path / "cm.xyz"],
        "json over the input": [small, "--json", small],
        "compare file missing": [small, "--compare", tmp_path / "nope.csv"],
        "compare wrong columns": [small, "--compare", wrong],
    }[case]
    result = run(*args)
    assert_one_line_error(result)
    assert result.stdout == ""
    assert small.read_bytes() == (HEADER + "drums,a.wav,drum,drums\r\n").encode()  # untouched


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_failed_write_is_one_line(option, small):
    """A target that passes the early checks but fails on write (disk full)."""
    assert_one_line_error(run(small, option, "/dev/full"))


def test_single_category_and_short_rows_stay_quiet(tmp_path):
    """One category only (scikit-learn would warn) and a row with missing cells."""
    source = tmp_path / "one.csv"
    source.write_text(HEADER + "drums,a.wav,drum,drums\ndrums,b.wav\n", encoding="utf-8")
    result = run(source, "--per-class", "--json", tmp_path / "r.json")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[:9] == [
        "", "Accuracy: 50.00% (1/2 matches)", "", "Mismatches:", "- File: b.wav",
        "  Expected label:   drums", "  Predicted label:  ", "  Proposed label:   ", ""]
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["labels"] == ["", "drums"]


def test_half_written_last_line_is_skipped_with_a_warning(tmp_path):
    source = tmp_path / "killed.csv"
    source.write_text(HEADER + "drums,a.wav,drum,drums\r\nbass,b.wav,bass guitar,bass\r\n"
                      "vocals,c.w", encoding="utf-8", newline="")
    result = run(source)
    assert result.returncode == 0
    assert result.stdout.splitlines()[1] == "Accuracy: 100.00% (2/2 matches)"
    assert result.stderr.splitlines() == [
        f"warning: {source}: line 4 ('vocals,c.w') is cut short, as a killed run leaves it; "
        "it is skipped (--resume would write it again)"]


def test_repeated_paths_are_counted_in_a_warning(tmp_path):
    source = write_csv(tmp_path / "twice.csv", [
        ("drums", "a.wav", "drum", "drums"), ("bass", "b.wav", "bass", "bass"),
        ("drums", "a.wav", "drum", "drums"), ("bass", "b.wav", "bass", "bass"),
        ("vocals", "c.wav", "singing", "vocals")])
    result = run(source)
    assert result.returncode == 0
    assert result.stdout.splitlines()[1] == "Accuracy: 100.00% (5/5 matches)"
    assert result.stderr.splitlines() == [
        f"warning: {source}: 2 row(s) repeat the path of an earlier row (each stem should "
        "have one row); every row is scored"]


def test_a_folder_is_named_as_a_folder(tmp_path):
    result = run(tmp_path)
    assert_one_line_error(result)
    assert result.stderr == f"error: {tmp_path}: is a folder; give a results CSV file\n"

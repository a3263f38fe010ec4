"""AST/list_labels.py run from the project root, as users run it (in this process as its own
would run it, tests/helpers/cli.py; from another folder in a process of its own)."""

import subprocess
import sys

import pytest

from stemeval.scoring.published_rows import PUBLISHED_RESULTS
from tests.helpers.cli import ROOT, run_script

SCRIPT = "AST/list_labels.py"

MOISES_CATEGORIES = ["bass", "bowed_strings", "drums", "guitar", "other_keys", "other_plucked",
                     "percussion", "piano", "vocals", "wind"]


def run(*args):
    return run_script(SCRIPT, *args, cwd=ROOT)


def test_dsd100_labels():
    result = run(PUBLISHED_RESULTS["dsd100"])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "Unique labels found:\n['bass', 'drums', 'vocals']\n"


def test_moises_labels():
    result = run(PUBLISHED_RESULTS["moisesdb"], "--format", "compact")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == MOISES_CATEGORIES


def test_dsd100_counts():
    result = run(PUBLISHED_RESULTS["dsd100"], "--counts")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("Unique labels found:\n['bass', 'drums', 'vocals']\n\n"
                             "bass    100\ndrums   100\nvocals  100\n")


def test_moises_counts():
    result = run(PUBLISHED_RESULTS["moisesdb"], "--counts", "--format", "compact")
    counts = {label: int(count) for label, count in map(str.split, result.stdout.splitlines())}
    assert counts == {"drums": 921, "guitar": 436, "vocals": 378, "bass": 275, "other_keys": 191,
                      "piano": 131, "percussion": 125, "bowed_strings": 49, "wind": 29,
                      "other_plucked": 7}


def test_labels_are_stripped_lowercased_and_unique(tmp_path):
    source = tmp_path / "r.csv"
    source.write_text("label,path,prediction,proposed_label\n"
                      " Vocals ,a.wav,singing,vocals\nvocals,b.wav,x,other\nBASS,c.wav,x,bass\n",
                      encoding="utf-8")
    assert run(source, "--format", "compact").stdout == "bass\nvocals\n"
    assert run(source).stdout == "Unique labels found:\n['bass', 'vocals']\n"
    compact_counts = run(source, "--counts", "--format", "compact").stdout
    assert [line.split() for line in compact_counts.splitlines()] == [
        ["bass", "1"], ["vocals", "2"]]


def test_runs_from_another_folder(tmp_path):
    """The script puts the project root on sys.path itself."""
    source = tmp_path / "r.csv"
    source.write_text("label,path,prediction,proposed_label\ndrums,a.wav,drum,drums\n")
    result = subprocess.run([sys.executable, str(ROOT / SCRIPT), str(source)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "Unique labels found:\n['drums']\n"


@pytest.mark.parametrize("case", ["no label column", "unknown option"])
def test_bad_input_is_one_line(case, tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,file\ndrums,a.wav\n")
    args = {
        "no label column": [wrong],
        "unknown option": [wrong, "--bogus"],
    }[case]
    result = run(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_column_option_lists_another_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("label,path,prediction,proposed_label\nbass,a.wav,drum,drums\n"
                    "drums,b.wav,drum kit,drums\nvocals,c.wav,singing,vocals\n")
    result = run(str(path), "--column", "proposed_label", "--counts", "--format", "compact")
    assert result.returncode == 0
    assert result.stdout.split() == ["drums", "2", "vocals", "1"]
    result = run(str(path), "--column", "prediction")
    assert result.stdout == "Unique prediction values found:\n['drum', 'drum kit', 'singing']\n"


@pytest.mark.parametrize("column,fragment", [
    ("nonsense", "missing column(s) nonsense (header is label,path,prediction,proposed_label)"),
    ("top5", "missing column(s) top5 (header is label,path,prediction,proposed_label); "
             "the analyze scripts write it only with --details"),
])
def test_unknown_or_detail_column_is_one_line(tmp_path, column, fragment):
    path = tmp_path / "r.csv"
    path.write_text("label,path,prediction,proposed_label\nbass,a.wav,drum,drums\n")
    result = run(str(path), "--column", column)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {path}: {fragment}"]


def test_column_lower_cases_only_labels_and_skips_empty_values(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("label,path,prediction,proposed_label,score,speech_score,top5,error\n"
                    "Bass,Songs/A/bass.wav,Bass guitar,bass,0.9,1,,\n"
                    "drums,Songs/B/drums.wav,error,error,,,,OSError: No such file\n"
                    ",Songs/C/cut.wav,,,,,,\n")
    compact = ("--format", "compact")
    assert run(path, "--column", "path", *compact).stdout.splitlines() == [
        "Songs/A/bass.wav", "Songs/B/drums.wav", "Songs/C/cut.wav"]
    assert run(path, "--column", "error", *compact).stdout == "OSError: No such file\n"
    assert run(path, "--column", "prediction", *compact).stdout == "Bass guitar\nerror\n"
    assert run(path, *compact).stdout == "bass\ndrums\n"
    assert run(path).stdout == "Unique labels found:\n['bass', 'drums']\n"
    assert run(path, "--column", "proposed_label", "--counts", *compact).stdout.split() == [
        "bass", "1", "error", "1"]

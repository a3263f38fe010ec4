"""computeaccuracy.py and AST/list_labels.py print, byte for byte, what the published scripts
printed (re-created in tests/helpers/published.py), with the same exit status."""

import subprocess
import sys

import pytest

from stemeval.scoring.published_rows import PUBLISHED_RESULTS
from tests.helpers import published
from tests.helpers.cli import ROOT, run_script

SCRIPTS = {"computeaccuracy": ("computeaccuracy.py", published.computeaccuracy),
           "list_labels": ("AST/list_labels.py", published.list_labels)}
HEADER = "label,path,prediction,proposed_label\r\n"


def inputs(folder):
    """Every case the published output covers: {name: argument list}."""
    files = {
        "no mismatch": HEADER + "drums,a/drums.wav,drum kit,drums\r\n"
                                "Vocals ,b/vocals.wav,singing, vocals\r\n",
        "raw fields": HEADER + " Bass,a/bass.wav,guitar,Other\r\n"
                               "drums,b/drums.wav,drum,drums\r\n",
        "empty": "",
        "header only": HEADER,
    }
    cases = {name: [str(path)] for name, path in PUBLISHED_RESULTS.items()}
    for name, text in files.items():
        path = folder / f"{name.replace(' ', '_')}.csv"
        path.write_text(text, encoding="utf-8", newline="")
        cases[name] = [str(path)]
    cases["missing file"] = [str(folder / "nope.csv")]
    cases["no argument"] = []
    return cases


CASES = ["dsd100", "moisesdb", "no mismatch", "raw fields", "empty", "header only",
         "missing file", "no argument"]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
@pytest.mark.parametrize("case", CASES)
def test_same_output_as_published(tmp_path, script, case):
    """The script in a process of its own for the published files (as users ran it), in
    this one as its own would run it for the other cases (tests/helpers/cli.py)."""
    path, oracle = SCRIPTS[script]
    argv = inputs(tmp_path)[case]
    expected, status = oracle(argv)
    if case in PUBLISHED_RESULTS:
        result = subprocess.run([sys.executable, path, *argv], cwd=ROOT, capture_output=True,
                                timeout=60)
    else:
        result = run_script(path, *argv, cwd=ROOT, text=False)
    assert result.stdout == expected.encode("utf-8")
    assert (result.returncode, result.stderr) == (status, b"")


def test_the_cases_cover_each_ending(tmp_path):
    """The oracle's outputs: mismatch blocks, no mismatch, no data, usage and missing file."""
    cases = inputs(tmp_path)
    out = {name: published.computeaccuracy(argv) for name, argv in cases.items()}
    assert out["dsd100"][0].startswith("\nAccuracy: 92.00% (276/300 matches)\n\nMismatches:\n")
    assert out["dsd100"][0].count("- File: ") == 24
    assert out["moisesdb"][0].count("- File: ") == 323
    assert out["no mismatch"] == (
        "\nAccuracy: 100.00% (2/2 matches)\n\n\u2705 No mismatches found!\n", 0)
    assert out["raw fields"][0].endswith(
        "Mismatches:\n- File: a/bass.wav\n  Expected label:    Bass\n"
        "  Predicted label:  guitar\n  Proposed label:   Other\n\n")
    assert out["empty"] == out["header only"] == ("No data to evaluate.\n", 0)
    assert out["missing file"] == (f"Error: File '{tmp_path / 'nope.csv'}' does not exist.\n", 1)
    assert out["no argument"] == ("Usage: python computeaccuracy.py /path/to/results.csv\n", 1)


def test_options_print_after_the_published_part():
    result = subprocess.run([sys.executable, "computeaccuracy.py", str(PUBLISHED_RESULTS["dsd100"]),
                             "--per-class"], cwd=ROOT, capture_output=True, timeout=120)
    expected, _ = published.computeaccuracy([str(PUBLISHED_RESULTS["dsd100"])])
    assert result.stdout.startswith(expected.encode("utf-8"))
    assert result.stdout[len(expected):].startswith(b"Per category")

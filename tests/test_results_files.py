"""Results files as the scoring commands read them: a byte-order mark, rows with neither label
nor proposed label, two outputs of one command that are one file, and a leaderboard of runs
that would share a name."""

import csv
import json

import pytest

from tests.helpers.cli import run_script

HEADER = "label,path,prediction,proposed_label\r\n"
ROWS = "bass,s1/bass.wav,bass guitar,bass\r\ndrums,s1/drums.wav,guitar,guitar\r\n"


def command(script, *args, cwd):
    return run_script(script, *args, cwd=cwd)


def test_a_byte_order_mark_is_read_as_excel_writes_it(tmp_path):
    (tmp_path / "plain.csv").write_text(HEADER + ROWS, encoding="utf-8", newline="")
    (tmp_path / "excel.csv").write_text(HEADER + ROWS, encoding="utf-8-sig", newline="")
    plain = command("computeaccuracy.py", "plain.csv", "--per-class", cwd=tmp_path)
    excel = command("computeaccuracy.py", "excel.csv", "--per-class", cwd=tmp_path)
    assert excel.returncode == 0, excel.stderr
    assert (excel.stdout, excel.stderr) == (plain.stdout, plain.stderr)


def test_rows_without_labels_are_counted_in_a_warning_and_not_scored(tmp_path):
    (tmp_path / "blank.csv").write_text(HEADER + ROWS + ",,,\r\n,s9/x.wav,,\r\n",
                                        encoding="utf-8", newline="")
    result = command("computeaccuracy.py", "blank.csv", "--format", "compact", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "Accuracy: 50.00% (1/2 matches)"
    assert result.stderr.splitlines() == [
        "warning: blank.csv: 2 row(s) have neither a label nor a proposed label (the first at "
        "line 4); they are not scored"]


@pytest.mark.parametrize("script, first", [("computeaccuracy.py", "run.csv"),
                                           ("probe.py", "run.npz")])
def test_two_outputs_of_one_command_must_differ(tmp_path, script, first):
    (tmp_path / "run.csv").write_text(HEADER + ROWS, encoding="utf-8", newline="")
    result = command(script, first, "--json", "out.png", "--plot", "out.png", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("error: cannot write the JSON file out.png: it is also the plot "
                             "out.png; give them different paths\n")
    assert not (tmp_path / "out.png").exists()


def write_cell(path, rows, tagger=None, deform=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "path", "prediction", "proposed_label"])
        writer.writerows((label, f"s{index}/{label}.wav", guess, guess)
                         for index, (label, guess) in enumerate(rows))
    if tagger:
        identity = {"tagger": tagger, "dataset": "dsd100", "deform": deform,
                    "precision": "fp32"}
        path.with_name(path.name + ".json").write_text(json.dumps({"tagger": tagger,
                                                                   "identity": identity}))
    return str(path.relative_to(path.parents[2]))


def board(*files, cwd):
    result = command("computeaccuracy.py", *files, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [line.split("  ")[1].strip() if line.startswith("  ") else line
            for line in result.stdout.splitlines()[2:]]


def test_sweep_cells_without_sidecars_are_named_by_the_parts_that_differ(tmp_path):
    good = [("bass", "bass"), ("drums", "drums")]
    files = [write_cell(tmp_path / "out" / tagger / "clean.csv", rows)
             for tagger, rows in (("ast", good), ("passt", [("bass", "x"), ("drums", "x")]))]
    assert board(*files, cwd=tmp_path) == ["ast/clean", "passt/clean"]
    result = command("computeaccuracy.py", *files, cwd=tmp_path)
    assert "*" not in result.stdout.splitlines()[3]  # passt's zeros are nobody's best


def test_runs_of_one_tagger_are_named_by_their_condition(tmp_path):
    rows = [("bass", "bass"), ("drums", "drums")]
    files = [write_cell(tmp_path / "out" / "ast" / name, rows, "ast", deform)
             for name, deform in (("clean.csv", "clean"), ("noise_snr=5.csv", "noise:snr=5"))]
    assert board(*files, cwd=tmp_path) == ["ast (clean)", "ast (noise:snr=5)"]

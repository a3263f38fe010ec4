"""--resume after a real run killed with SIGKILL, the repair of a half-written last line,
and the --details columns."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stemeval.common.errors import UserError
from stemeval.datasets import Stem
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.runfiles.results import stems_to_do
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.python_hooks import hooked_env
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
SONGS = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A DSD100 tree of 8 songs x 3 stems (one silent), a biased AST, a speech graph at 30."""
    base = tmp_path_factory.mktemp("resume")
    for song in range(SONGS):
        folder = base / "tree" / "Dev" / f"{song:03d} - Song"
        folder.mkdir(parents=True)
        for index, name in enumerate(("bass", "drums", "vocals")):
            audio = concat(tone(2.5, 22050, 100 + 40 * index + song, seed=song),
                           silence(0.6, 22050), tone(1.5, 22050, 500, seed=index))
            if song == 3 and name == "vocals":
                audio = silence(2.0, 22050)
            write_wav(folder / f"{name}.wav", audio, 22050)
    bias = {AUDIOSET_LABELS.index("Speech"): 10.0, AUDIOSET_LABELS.index("Drum kit"): 6.0}
    checkpoint = save_original_checkpoint(random_model(label_bias=bias), base / "ast.pth")
    graph = write_constant_speech_graph(base / "speech.pb", logit_for_score(30.0))
    return base, ["--checkpoint", str(checkpoint), "--speech-model", str(graph)]


def command(setup, output, *extra):
    base, models = setup
    return [sys.executable, str(ROOT / "analyze_dsd100.py"), "tree", *models,
            "--output", output, "--quiet", *extra]


def run(setup, output, *extra):
    result = subprocess.run(command(setup, output, *extra), cwd=setup[0], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return (setup[0] / output).read_bytes()


def test_resume_after_sigkill_equals_uninterrupted_run(setup):
    base = setup[0]
    expected = run(setup, "whole.csv")
    assert expected.count(b"\r\n") == 1 + 3 * SONGS
    process = subprocess.Popen(command(setup, "killed.csv", "--workers", "0", "--batch-size", "1"),
                               cwd=base, stderr=subprocess.DEVNULL,
                               env=hooked_env(base / "hooks", pause_after_rows=5))
    deadline = time.time() + 300
    while time.time() < deadline:
        written = (base / "killed.csv").read_bytes() if (base / "killed.csv").exists() else b""
        if written.count(b"\r\n") >= 6:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = (base / "killed.csv").read_bytes()
    assert 6 <= partial.count(b"\r\n") < 1 + 3 * SONGS, "the run was not stopped midway"
    assert run(setup, "killed.csv", "--resume") == expected


def test_resume_repairs_a_half_written_line(setup):
    base = setup[0]
    expected = run(setup, "full.csv")
    lines = expected.split(b"\r\n")
    (base / "cut.csv").write_bytes(b"\r\n".join(lines[:5]) + b"\r\n" + lines[5][:12])
    assert run(setup, "cut.csv", "--resume") == expected


def test_resume_refuses_another_header(setup):
    run(setup, "plain.csv")
    result = subprocess.run(command(setup, "plain.csv", "--resume", "--details"), cwd=setup[0],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: cannot resume plain.csv: its header is label,path,prediction,proposed_label, "
        "this run writes label,path,prediction,proposed_label,score,speech_score,top5,error,"
        "group"]


def test_details_columns(setup):
    run(setup, "details.csv", "--details")
    with open(setup[0] / "details.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["label", "path", "prediction", "proposed_label", "score",
                             "speech_score", "top5", "error", "group"]
    for row in rows:
        assert row["group"] == Path(row["path"]).parent.name  # the song folder
        if row["prediction"] == "error":
            assert "silence" in row["error"] and row["score"] == ""
            continue
        assert row["prediction"] == "speech" and row["error"] == ""
        assert abs(float(row["speech_score"]) - 30.0) < 1e-3
        top5 = row["top5"].split("; ")
        assert len(top5) == 5 and top5[0].startswith("Speech (")
        assert float(top5[0][len("Speech ("):-1]) == float(row["score"])
    plain = run(setup, "plain4.csv").decode().splitlines()
    assert [",".join(line.split(",")[:4]) for line in plain[1:]] == [
        ",".join([r["label"], r["path"], r["prediction"], r["proposed_label"]]) for r in rows]


def test_resume_after_a_cut_header_starts_anew(setup):
    base = setup[0]
    expected = run(setup, "fresh.csv")
    (base / "cut_header.csv").write_bytes(b"label,pa")
    assert run(setup, "cut_header.csv", "--resume") == expected



def test_resume_matches_rows_below_the_folder_however_it_is_typed(setup):
    base = setup[0]
    whole = run(setup, "typed.csv").decode().split("\r\n")
    (base / "typed.csv").write_text("\r\n".join(whole[:6]) + "\r\n", newline="")
    result = subprocess.run([*command(setup, "typed.csv", "--resume")[:2], "./tree",
                             *command(setup, "typed.csv", "--resume")[3:]],
                            cwd=base, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    resumed = (base / "typed.csv").read_text().splitlines()
    assert resumed[:6] == whole[:6]
    paths = [os.path.normpath(line.split(",")[1]) for line in resumed[1:]]
    assert sorted(paths) == sorted(os.path.normpath(line.split(",")[1]) for line in whole[1:-1])


def test_resume_refuses_a_file_of_another_folder(setup):
    base = setup[0]
    (base / "moises.csv").write_text(
        "label,path,prediction,proposed_label\r\n"
        "bass,moisesdb/0a1b/bass/line.wav,Bass guitar,bass\r\n"
        "wind,moisesdb/0a1b/wind/flute.wav,Flute,wind\r\n", newline="")
    result = subprocess.run(command(setup, "moises.csv", "--resume"), cwd=base,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cannot resume moises.csv: it was made for another folder or dataset "
        "(moisesdb/0a1b/bass/line.wav is not among this run's stems of tree; its 2 rows are stems under "
        "moisesdb/0a1b labelled bass, wind); pass another --output, or drop --resume to "
        "start it anew"]
    assert (base / "moises.csv").read_text().count("\n") == 3


STEMS = [Stem("data/Dev/001/bass.wav", "bass"), Stem("data/Dev/001/drums.wav", "drums"),
         Stem("data/Dev/002/bass.wav", "bass")]


@pytest.mark.parametrize("written", ["data", "./data/", "/elsewhere/data"])
def test_rows_match_stems_by_their_path_below_the_folder(written):
    kept = [(f"{written}/Dev/001/bass.wav", "bass"), (f"{written}/Dev/002/bass.wav", "bass")]
    assert stems_to_do(kept, STEMS, "data", "out.csv") == [STEMS[1]]


@pytest.mark.parametrize("kept, reason", [
    ([("data/Dev/001/bass.wav", "001")],
     "it labels data/Dev/001/bass.wav '001' where this run labels it 'bass'"),
    ([("a/Dev/001/bass.wav", "bass"), ("b/Dev/002/bass.wav", "bass")],
     "its rows lie below 2 different folders"),
    ([("data/Test/009/bass.wav", "bass")],
     "data/Test/009/bass.wav is not among this run's stems of data"),
])
def test_resume_refuses_rows_of_another_folder_or_dataset(kept, reason):
    with pytest.raises(UserError, match="cannot resume out.csv: it was made for another "
                                        "folder or dataset") as error:
        stems_to_do(kept, STEMS, "data", "out.csv")
    assert reason in str(error.value)


def _sigint_as_in_a_terminal():
    """Ctrl-C's SIGINT with its default action, as in a terminal: a test run started in the
    background by a non-interactive shell (as a CI job may be) would pass it on as ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_says_that_resume_continues_the_run(setup):
    base = setup[0]
    process = subprocess.Popen(command(setup, "stopped.csv", "--workers", "0", "--batch-size", "1"),
                               cwd=base, stderr=subprocess.PIPE, text=True,
                               env=hooked_env(base / "hooks", pause_after_rows=2),
                               preexec_fn=_sigint_as_in_a_terminal)
    deadline = time.time() + 300
    while time.time() < deadline and not (
            (base / "stopped.csv").exists() and (base / "stopped.csv").read_bytes().count(b"\n") >= 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        "interrupted: the rows so far are in stopped.csv; the same command with --resume "
        "continues the run")


def test_manifest_stems_match_below_its_folder_or_by_their_whole_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "stems.csv").write_text("path,label\n")
    stems = [Stem("lists/audio/a.wav", "bass"), Stem("/data/b.wav", "drums"),
             Stem("lists/audio/c.wav", "bass")]
    kept = [("./lists/audio/a.wav", "bass"), ("/data/b.wav", "drums")]
    assert stems_to_do(kept, stems, "lists/stems.csv", "out.csv") == [stems[2]]

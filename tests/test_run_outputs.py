"""What a run writes and when it refuses, through analyze_dsd100.py and evaluate.py: outputs
that are inputs or each other, a device, a file of another kind, a second writer, SIGTERM;
resumes that are refused without changing a byte, that would mix two conditions, or that
meet a damaged file; sessions; and a folder name that is not UTF-8."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stemeval.runfiles.embeddings import load_arrays
from tests.helpers import dataset_trees
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.python_hooks import hooked_env
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
SONGS = {"Dev": ("000 - A", "001 - B", "002 - C", "003 - D"), "Test": ("004 - E", "005 - F")}
STEMS = ("bass", "drums", "vocals")
HEADER = "label,path,prediction,proposed_label"


def write_song(folder, seed):
    for index, name in enumerate(STEMS):
        write_wav(folder / f"{name}.wav",
                  concat(tone(1.2, RATE, 150 + 70 * index + 9 * seed, seed=seed),
                         silence(0.6, RATE), tone(0.4, RATE, 600, seed=index)), RATE)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A DSD100 tree (4 songs in Dev, 2 in Test), random AST weights, two speech graphs, a
    map, and ``full.csv``: the whole tree's results with their sidecar."""
    base = tmp_path_factory.mktemp("run_outputs")
    seed = 0
    for split, songs in SONGS.items():
        for song in songs:
            (base / "tree" / split / song).mkdir(parents=True)
            write_song(base / "tree" / split / song, seed)
            seed += 1
    save_original_checkpoint(random_model(seed=3), base / "ast.pth")
    write_constant_speech_graph(base / "speech.pb", logit_for_score(5.0))
    write_constant_speech_graph(base / "other.pb", logit_for_score(6.0))
    (base / "map.toml").write_text('bass = ["Bass guitar"]\ndrums = ["Drum kit"]\n'
                                   'vocals = ["Singing"]\n')
    run(base, "--output", "full.csv")
    return base


def command(base, *args, script="analyze_dsd100.py", folder="tree"):
    """The script's command line; ``folder``: its positional argument(s)."""
    positional = list(folder) if isinstance(folder, tuple) else [folder]
    return [sys.executable, str(ROOT / script), *positional,
            "--checkpoint", str(base / "ast.pth"), "--speech-model", str(base / "speech.pb"),
            "--quiet", "--workers", "0", *map(str, args)]


def analyze(base, *args, cwd=None, **options):
    return subprocess.run(command(base, *args, **options), cwd=cwd or base, capture_output=True,
                          text=True, timeout=600)


def run(base, *args, cwd=None, **options):
    result = analyze(base, *args, cwd=cwd, **options)
    assert result.returncode == 0, result.stderr
    return result


def refused(result):
    """The one ``error:`` line of a refused run (exit status 2, no traceback)."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: "):]


def snapshot(*folders):
    """Every file below ``folders`` with its bytes (what a refused run must not change)."""
    return {path: path.read_bytes() for folder in folders for path in Path(folder).rglob("*")
            if path.is_file()}


def copy_full(setup, folder, name="out.csv"):
    """``full.csv`` and its sidecar as ``folder/name``; returns the CSV's lines (with ends)."""
    shutil.copy(setup / "full.csv", folder / name)
    shutil.copy(setup / "full.csv.json", folder / f"{name}.json")
    return (folder / name).read_bytes().splitlines(keepends=True)


# --- outputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("output, role", [
    ("ast.pth", "--checkpoint"), ("./ast.pth", "--checkpoint"), ("speech.pb", "--speech-model"),
    ("tree/Dev/001 - B/drums.wav", "stem"), ("map.toml", "--map"),
    ("link.csv", "--checkpoint"), ("hard.csv", "--checkpoint")])
def test_an_output_that_is_an_input_is_refused_before_any_work(setup, tmp_path, output, role):
    (setup / "link.csv").unlink(missing_ok=True)
    (setup / "hard.csv").unlink(missing_ok=True)
    os.symlink(setup / "ast.pth", setup / "link.csv")
    os.link(setup / "ast.pth", setup / "hard.csv")
    before = snapshot(setup)
    message = refused(analyze(setup, "--output", output, "--map", "map.toml"))
    assert message.startswith(f"cannot write the output {output}: it is the {role} ")
    assert snapshot(setup) == before


def test_the_manifest_is_not_an_output(setup, tmp_path):
    dataset_trees.manifest(tmp_path)
    manifest = tmp_path / "lists" / "stems.csv"
    before = manifest.read_bytes()
    result = analyze(setup, "--output", "lists/stems.csv", script="evaluate.py",
                     folder=("manifest", "lists/stems.csv"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr  # (and a label warning)
    assert result.stderr.splitlines()[-1] == ("error: cannot write the output lists/stems.csv: "
                                              "it is the manifest lists/stems.csv")
    assert manifest.read_bytes() == before and not (tmp_path / "lists/stems.csv.json").exists()


@pytest.mark.parametrize("embeddings, other", [("out.csv", "output"),
                                               ("out.csv.json", "sidecar")])
def test_embeddings_that_are_another_output_are_refused(setup, tmp_path, embeddings, other):
    message = refused(analyze(setup, "--output", "out.csv", "--embeddings", embeddings,
                              folder=setup / "tree", cwd=tmp_path))
    assert message == (f"cannot write the embeddings {embeddings}: it is also the {other} "
                       f"{'out.csv' if other == 'output' else 'out.csv.json'}; give them "
                       f"different paths")
    assert list(tmp_path.iterdir()) == []


def test_a_pipe_is_refused_before_any_work(setup, tmp_path):
    """(Before the guard, the run blocked on the pipe until the timeout.)"""
    os.mkfifo(tmp_path / "pipe")
    result = subprocess.run(command(setup, "--output", "pipe", folder=setup / "tree"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused(result).startswith("cannot write the output pipe: it is not a regular file")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["pipe"]


def test_a_file_of_another_kind_is_kept_an_empty_one_replaced(setup, tmp_path):
    (tmp_path / "notes.txt").write_text("my notes\n")
    message = refused(analyze(setup, "--output", "notes.txt", folder=setup / "tree",
                              cwd=tmp_path))
    assert message.startswith("cannot write the output notes.txt: it exists and is not a "
                              "results CSV")
    assert (tmp_path / "notes.txt").read_text() == "my notes\n"
    (tmp_path / "scores.npz").write_bytes(b"PK\x03\x04\x00\r\x00binary\r\n")
    message = refused(analyze(setup, "--output", "scores.npz", folder=setup / "tree",
                              cwd=tmp_path))
    assert message.startswith("cannot write the output scores.npz: it exists and is not a "
                              "results CSV")
    (tmp_path / "empty.csv").write_bytes(b"")
    run(setup, "--output", tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_bytes() == (setup / "full.csv").read_bytes()


def test_a_second_writer_stops_at_once_naming_the_first(setup, tmp_path):
    from stemeval.runfiles.outputs import RunFiles

    output = tmp_path / "out.csv"
    with RunFiles(str(output)).locked():
        result = analyze(setup, "--output", output)
    assert refused(result) == (f"cannot write {output}: another run (PID {os.getpid()}) is "
                               f"writing it (lock file {output}.lock); wait for it to end, or "
                               f"give another output")
    assert not output.exists()


def test_sigterm_stops_as_ctrl_c_does_and_resume_goes_on(setup, tmp_path):
    args = ["--output", "t.csv", "--embeddings", "t.npz", "--batch-size", "1"]
    process = subprocess.Popen(command(setup, *args, folder=setup / "tree"), cwd=tmp_path,
                               stderr=subprocess.PIPE, text=True,
                               env=hooked_env(tmp_path / "hooks", pause_after_rows=2))
    output = tmp_path / "t.csv"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and not (
            output.exists() and output.read_bytes().count(b"\n") >= 3):
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == (
        "interrupted: the rows so far are in t.csv; the same command with --resume continues "
        "the run")
    with open(output, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert 2 <= len(rows) < 18, "the run was not stopped midway"
    assert list(load_arrays(tmp_path / "t.npz")["paths"]) == sorted(row["path"] for row in rows)
    run(setup, *args, "--resume", folder=setup / "tree", cwd=tmp_path)
    full = (setup / "full.csv").read_text().replace("tree/", f"{setup}/tree/")
    assert output.read_text() == full
    assert len(load_arrays(tmp_path / "t.npz")["paths"]) == 18


# --- resume -------------------------------------------------------------------------------


def damaged(lines):
    """A file whose third line has lost a field."""
    return b"".join(lines[:2]) + lines[2].rsplit(b",", 1)[0] + b"\r\n" + b"".join(lines[3:6])


@pytest.mark.parametrize("case, extra, message", [
    ("header", ["--details"], "cannot resume out.csv: its header is " + HEADER + ", this run "
     "writes " + HEADER + ",score,speech_score,top5,error,group"),
    ("other dataset", [], "cannot resume out.csv: it was made for another folder or dataset"),
    ("damaged row", [], "cannot resume out.csv: line 3 has 3 field(s) where its header has 4 "
     "(a damaged row); repair or remove that line, or drop --resume to start anew"),
    ("not utf-8", [], "cannot resume out.csv: line 4 holds bytes that are not UTF-8 (a results "
     "CSV is UTF-8); repair that line, or drop --resume to start anew"),
    ("corrupt sidecar", [], "cannot resume out.csv: its sidecar out.csv.json cannot be read "
     "("),
])
def test_a_refused_resume_changes_nothing(setup, tmp_path, case, extra, message):
    lines = copy_full(setup, tmp_path)
    cut = b"".join(lines[:6]) + lines[6][:15]  # as a killed run leaves it
    content = {"header": cut, "other dataset": cut.replace(b"tree/Dev", b"moisesdb/x"),
               "damaged row": damaged(lines), "corrupt sidecar": cut,
               "not utf-8": b"".join(lines[:3]) + lines[3].replace(b"vocals,", b"voc\xffls,", 1)
               + b"".join(lines[4:6])}[case]
    (tmp_path / "out.csv").write_bytes(content)
    if case == "corrupt sidecar":
        (tmp_path / "out.csv.json").write_text('{"tagger": "ast", ')
    before = snapshot(tmp_path)
    result = analyze(setup, "--output", "out.csv", "--resume", *extra, folder=setup / "tree",
                     cwd=tmp_path)
    assert refused(result).startswith(message)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_sidecar_that_cannot_be_written_leaves_the_results_as_they_were(setup, tmp_path,
                                                                          resume):
    lines = copy_full(setup, tmp_path)
    (tmp_path / "out.csv").write_bytes(b"".join(lines[:6]) + lines[6][:15])
    (tmp_path / "out.csv.json").unlink()
    (tmp_path / "out.csv.json").mkdir()
    before = snapshot(tmp_path)
    message = refused(analyze(setup, "--output", "out.csv", *resume, folder=setup / "tree",
                              cwd=tmp_path))
    assert message == "cannot write the sidecar out.csv.json: it is a folder"
    assert snapshot(tmp_path) == before
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize("option, value, named", [
    ("--deform", "gain:db=-6", "--deform clean, this run uses gain:db=-6"),
    ("--map", "map.toml", "map "), ("--speech-model", "other.pb", "speech model "),
    ("--precision", "bf16", "--precision fp32, this run uses bf16"),
    ("--speech-backend", "essentia", "--speech-backend torch, this run uses essentia")])
def test_a_resume_of_another_condition_is_refused(setup, tmp_path, option, value, named):
    lines = copy_full(setup, tmp_path)
    (tmp_path / "out.csv").write_bytes(b"".join(lines[:6]))
    before = snapshot(tmp_path)
    value = str(setup / value) if value.endswith((".toml", ".pb")) else value
    message = refused(analyze(setup, "--output", "out.csv", "--resume", option, value,
                              folder=setup / "tree", cwd=tmp_path))
    assert message.startswith(f"cannot resume out.csv: its sidecar out.csv.json names {named}")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("extra, reason", [
    (["--limit", "5"], "a row for tree/Dev/001 - B/vocals.wav, stem 6 of 18, beyond --limit 5; "
     "resume with the options it was made with, or give another --output"),
    (["--split", "Dev"], "a row for tree/Test/004 - E/bass.wav, a stem of split Test, which "
     "--split Dev leaves out; resume with the options it was made with, or give another "
     "--output"),
    ([], "a row for tree/Dev/002 - C/vocals.wav, a stem that is no longer in tree (deleted or "
     "renamed); put it back, or remove its row from out.csv"),
])
def test_a_row_outside_the_run_says_why(setup, tmp_path, extra, reason):
    shutil.copytree(setup / "tree", tmp_path / "tree")
    copy_full(setup, tmp_path)
    if not extra:
        (tmp_path / "tree/Dev/002 - C/vocals.wav").unlink()
    message = refused(analyze(setup, "--output", "out.csv", "--resume", *extra, cwd=tmp_path))
    assert message == f"cannot resume out.csv: it has {reason}"


def test_a_row_cut_inside_a_quoted_path_is_written_again(setup, tmp_path):
    for seed, name in enumerate(("aa", "zz\nnewline")):
        (tmp_path / "tree" / "Dev" / name).mkdir(parents=True)
        write_song(tmp_path / "tree" / "Dev" / name, seed)
    run(setup, "--output", "whole.csv", cwd=tmp_path)
    whole = (tmp_path / "whole.csv").read_bytes()
    inner = whole.rindex(b'"tree/Dev/zz\n') + len(b'"tree/Dev/zz\n')
    (tmp_path / "cut.csv").write_bytes(whole[:inner])
    run(setup, "--output", "cut.csv", "--resume", cwd=tmp_path)
    assert (tmp_path / "cut.csv").read_bytes() == whole


def test_each_resume_adds_a_session(setup, tmp_path):
    lines = copy_full(setup, tmp_path)
    (tmp_path / "out.csv").write_bytes(b"".join(lines[:8]))
    first = json.loads((tmp_path / "out.csv.json").read_text())
    run(setup, "--output", "out.csv", "--resume", "--workers", "1", folder=setup / "tree",
        cwd=tmp_path)
    record = json.loads((tmp_path / "out.csv.json").read_text())
    assert [session["stems_written"] for session in record["sessions"]] == [18, 11]
    assert record["sessions"][0] == first["sessions"][0]
    assert record["sessions"][1]["options"]["workers"] == 1
    assert record["started"] == first["started"] <= record["finished"]
    assert (record["stems"], record["stems_this_run"]) == (18, 11)
    assert record["identity"] == first["identity"]


def test_a_resume_that_adds_embeddings_is_refused(setup, tmp_path):
    lines = copy_full(setup, tmp_path)
    (tmp_path / "out.csv").write_bytes(b"".join(lines[:8]))
    before = snapshot(tmp_path)
    message = refused(analyze(setup, "--output", "out.csv", "--resume", "--embeddings", "e.npz",
                              folder=setup / "tree", cwd=tmp_path))
    assert message == ("cannot resume out.csv with --embeddings e.npz: 7 of its 7 rows have no "
                       "embedding there (e.g. tree/Dev/000 - A/bass.wav), as when it "
                       "was begun without --embeddings; drop --embeddings, or drop --resume to "
                       "start anew")
    assert snapshot(tmp_path) == before


def test_a_folder_name_that_is_not_utf8_gets_its_rows(setup, tmp_path):
    from stemeval.runfiles.results import decode_text

    for name in (b"aa", b"b\xff", b"cc"):
        song = os.fsdecode(os.fsencode(tmp_path / "tree" / "Dev") + b"/" + name)
        os.makedirs(song)
        for index, stem in enumerate(STEMS):  # soundfile cannot write to such a name
            write_wav(tmp_path / f"{stem}.wav", concat(tone(1.0, RATE, 200 + 60 * index),
                                                       silence(0.5, RATE)), RATE)
            os.rename(tmp_path / f"{stem}.wav", os.path.join(song, f"{stem}.wav"))
    run(setup, "--output", "whole.csv", "--details", cwd=tmp_path)
    whole = (tmp_path / "whole.csv").read_bytes()
    with open(tmp_path / "whole.csv", newline="", encoding="utf-8") as handle:  # strict UTF-8
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9 and all(row["prediction"] != "error" for row in rows)
    assert [row["path"] for row in rows[3:6]] == [f"tree/Dev/b\\xff/{stem}.wav" for stem in STEMS]
    assert rows[3]["group"] == "b\\xff"
    for row in rows:  # the written path names the file
        assert os.path.isfile(tmp_path / decode_text(row["path"])), row["path"]
    cut = whole.index(b"tree/Dev/b\\xff/drums.wav") + 5
    (tmp_path / "cut.csv").write_bytes(whole[:cut])
    run(setup, "--output", "cut.csv", "--details", "--resume", cwd=tmp_path)
    assert (tmp_path / "cut.csv").read_bytes() == whole
    scored = subprocess.run([sys.executable, str(ROOT / "computeaccuracy.py"), "cut.csv"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (scored.returncode, scored.stderr) == (0, "")
    assert scored.stdout.splitlines()[1].endswith("/9 matches)")

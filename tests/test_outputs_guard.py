"""One guard for every file a command writes (issue 36): a report never replaces a run's own
file nor an input of its command; a run never writes another run's files; a symbolic or
hard link cannot make two writers of one file; embeddings and a sweep's summary have one
writer each; a link that names no file, or a folder that takes no file, is named as such.

Each case was reproduced before the fix (the report replaced the kept scores or the
sidecar with JSON, both runs wrote one CSV through a link, the second run replaced the
first's embeddings, ...) and is refused with one ``error:`` line and exit status 2 now.
Run files are made by hand (a results CSV, its sidecar, kept scores, embeddings), so no
model runs, but for the one case that goes through the evaluation command line.
"""

import json
import os
import types

import numpy as np
import pytest

from stemeval.commands import distance as distance_command
from stemeval.commands import probe as probe_command
from stemeval.commands import score as score_command
from stemeval.common.errors import UserError, exit_status
from stemeval.runfiles.outputs import (
    RunFiles,
    check_report_outputs,
    locked_path,
    run_file_kind,
    run_file_named,
)
from stemeval.runfiles.record_log import save_npz
from tests.helpers import dataset_trees
from tests.helpers.cli import run_script

HEADER = ["label", "path", "prediction", "proposed_label", "group"]
IDENTITY = {"tagger": "ast", "weights": {"path": "/m/ast.pth", "sha256": "a" * 64},
            "speech_model": {"path": "/m/speech.pb", "sha256": "b" * 64},
            "dataset": "dsd100", "deform": "clean", "precision": "fp32"}


def fake_run(folder, name="out.csv", embeddings=None, identity=IDENTITY, tracks=4):
    """A results CSV of ``tracks`` x (bass, drums) with its sidecar and kept scores, and
    with ``embeddings`` (a file name in ``folder``) its embeddings, noted as a run notes
    them; returns the CSV's path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [[label, f"tree/{track}/{label}.wav", "bass guitar", "bass", f"t{track}"]
            for track in range(tracks) for label in ("bass", "drums")]
    results = dataset_trees.write_csv(folder / name, [HEADER] + rows)
    (folder / f"{name}.json").write_text(json.dumps({
        "tagger": identity["tagger"], "identity": identity, "sessions": [],
        "options": {"embeddings": None if embeddings is None else str(folder / embeddings)}}))
    paths = np.array([row[1] for row in rows])
    np.savez(folder / f"{name}.scores.npz", scores=np.zeros((len(rows), 2), np.float32),
             gated=np.zeros(len(rows), bool), speech_rule=np.full(len(rows), -1, np.int8),
             classes=np.array(["Bass guitar", "Drum kit"]), tagger=np.array("ast"),
             zero_shot=np.array(False), identity=np.array(json.dumps(identity)),
             paths=paths, labels=np.array([row[0] for row in rows]),
             groups=np.array([row[4] for row in rows]))
    if embeddings is not None:
        arrays = {"embeddings": np.eye(len(rows), 4, dtype=np.float32), "paths": paths,
                  "labels": np.array([row[0] for row in rows]),
                  "groups": np.array([row[4] for row in rows]), "tagger": np.array("ast"),
                  "weights": np.array(identity["weights"]["sha256"])}
        with open(folder / embeddings, "wb") as handle:
            save_npz(handle, arrays, {"kind": "stemeval embeddings",
                                      "output": os.path.realpath(results),
                                      "identity": identity})
    return results


def one_error(status, capsys):
    """The one ``error:`` line of a refused command (exit status 2, nothing on stdout)."""
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0][len("error: "):]


def score(capsys, *args):
    return one_error(exit_status(lambda: score_command.main([str(a) for a in args])), capsys)


def snapshot(folder):
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


# --- reports ------------------------------------------------------------------------------


@pytest.mark.parametrize("output, said", [
    ("out.csv.scores.npz", "it is the kept scores of {run}, which this command reads"),
    ("out.csv.json", "it is the sidecar of {run}, which this command reads"),
    ("out.csv.scores.npz.part", "it is the kept scores log of {run}, which this command "
                                "reads"),
    ("out.csv.lock", "it is the lock file of {run}, which this command reads"),
])
def test_a_report_never_replaces_the_files_of_the_run_it_reads(tmp_path, capsys, output,
                                                               said):
    """Before: ``--json out.csv.scores.npz`` wrote JSON over the kept scores it had just
    read (exit 0), ``--json out.csv.json`` replaced the sidecar."""
    run = fake_run(tmp_path)
    before = snapshot(tmp_path)
    message = score(capsys, run, "--json", tmp_path / output)
    assert message == (f"cannot write the JSON file {tmp_path / output}: "
                       f"{said.format(run=run)}; give another path")
    assert snapshot(tmp_path) == before


def test_a_report_never_replaces_another_runs_files(tmp_path, capsys):
    mine, other = fake_run(tmp_path / "a"), fake_run(tmp_path / "b", embeddings="e.npz")
    before = snapshot(tmp_path)
    assert score(capsys, mine, "--json", f"{other}.json") == (
        f"cannot write the JSON file {other}.json: it is the sidecar of {other}, a run's own "
        f"file; give another path")
    assert score(capsys, mine, "--plot", tmp_path / "b/e.npz") == (
        f"cannot write the plot {tmp_path}/b/e.npz: it exists and is an embeddings .npz, a "
        f"run's own file, which a report never replaces; give another path")
    assert score(capsys, mine, "--json", other).startswith(
        f"cannot write the JSON file {other}: it exists and is a results CSV, a run's own file")
    assert snapshot(tmp_path) == before
    status = exit_status(lambda: score_command.main([str(mine), "--json",
                                                     str(tmp_path / "report.json")]))
    assert status == 0 and (tmp_path / "report.json").exists()
    capsys.readouterr()
    status = exit_status(lambda: score_command.main([str(mine), "--json",  # its own kind
                                                     str(tmp_path / "report.json")]))
    assert status == 0


def test_a_link_to_a_run_file_is_that_file(tmp_path, capsys):
    run = fake_run(tmp_path)
    os.symlink(f"{run}.scores.npz", tmp_path / "link.json")
    os.link(f"{run}.json", tmp_path / "hard.json")
    before = snapshot(tmp_path)
    assert score(capsys, run, "--json", tmp_path / "link.json").endswith(
        "it is the kept scores of " + str(run) + ", which this command reads; give another "
        "path")
    assert score(capsys, run, "--json", tmp_path / "hard.json").endswith(
        "it is the sidecar of " + str(run) + ", which this command reads; give another path")
    assert snapshot(tmp_path) == before


def test_probe_and_setdistance_reports_are_guarded_too(tmp_path, capsys):
    run = fake_run(tmp_path, embeddings="e.npz")
    npz = tmp_path / "e.npz"
    before = snapshot(tmp_path)
    status = exit_status(lambda: probe_command.main([str(npz), "--zero-shot", str(run),
                                                     "--json", f"{run}.json"]))
    assert one_error(status, capsys) == (f"cannot write the JSON file {run}.json: it is the "
                                         f"sidecar of {run}, which this command reads; give "
                                         f"another path")
    status = exit_status(lambda: distance_command.main([str(npz), str(npz), "--json",
                                                        f"{run}.scores.npz"]))
    assert one_error(status, capsys) == (f"cannot write the JSON file {run}.scores.npz: it is "
                                         f"the kept scores of {run}, a run's own file; give "
                                         f"another path")
    assert snapshot(tmp_path) == before


def test_what_a_file_is_and_what_it_is_named(tmp_path):
    run = fake_run(tmp_path, embeddings="e.npz")
    assert run_file_kind(run) == "a results CSV"
    assert run_file_kind(f"{run}.json") == "a run's sidecar"
    assert run_file_kind(f"{run}.scores.npz") == "a kept scores .npz"
    assert run_file_kind(tmp_path / "e.npz") == "an embeddings .npz"
    assert run_file_kind(dataset_trees.text(tmp_path / "notes.txt")) is None
    assert run_file_named(f"{run}.scores.npz") == ("kept scores", str(run))
    assert run_file_named(f"{tmp_path}/e.npz.part") == ("embeddings log", f"{tmp_path}/e.npz")
    assert run_file_named(f"{run}.json", own=[str(run)]) is None
    assert run_file_named(f"{tmp_path}/absent.csv.json") is None


# --- a run's files ------------------------------------------------------------------------


def test_a_run_never_writes_another_runs_files(tmp_path):
    """Before: ``--embeddings out.csv.scores.npz`` (another run's kept scores) was accepted
    and replaced; a second run with another ``--output`` and the same ``--embeddings``
    replaced the first's embeddings."""
    other = fake_run(tmp_path / "a", embeddings="e.npz")
    mine = str(tmp_path / "b.csv")
    with pytest.raises(UserError) as refused:
        RunFiles(mine, f"{other}.scores.npz", keep_scores=True).check()
    assert str(refused.value) == (f"cannot write the embeddings {other}.scores.npz: it is the "
                                  f"kept scores of {other}, another run's own file; give "
                                  f"another path")
    (tmp_path / "copy.npz").write_bytes((tmp_path / f"{other}.scores.npz").read_bytes())
    with pytest.raises(UserError) as refused:
        RunFiles(mine, str(tmp_path / "copy.npz"), keep_scores=True).check()
    assert str(refused.value).startswith(f"cannot write the embeddings {tmp_path}/copy.npz: "
                                         f"it exists and is not an embeddings .npz (it is a "
                                         f"kept scores .npz)")
    npz = str(tmp_path / "a/e.npz")
    with pytest.raises(UserError) as refused:
        RunFiles(mine, npz, keep_scores=True).check()
    assert str(refused.value) == (f"cannot write the embeddings {npz}: they are the embeddings "
                                  f"of the run {other} (its sidecar names them), another run's "
                                  f"own file; give another --embeddings path, or remove that "
                                  f"run's files first")
    RunFiles(str(other), npz, keep_scores=True).check()  # its own run writes them again
    os.unlink(other)  # a run that is gone claims nothing
    RunFiles(mine, npz, keep_scores=True).check()


def test_links_cannot_make_two_writers_of_one_file(tmp_path):
    """Before: run B through ``link.csv -> out.csv`` (or a hard link) ran beside run A:
    out.csv held B's rows, its sidecar and kept scores A's."""
    out = tmp_path / "out.csv"
    out.write_text(",".join(HEADER[:4]) + "\r\n")
    os.symlink("out.csv", tmp_path / "link.csv")
    os.link(out, tmp_path / "hard.csv")
    with RunFiles(str(out)).locked():
        with pytest.raises(UserError) as refused, RunFiles(str(tmp_path / "link.csv")).locked():
            pass
        assert str(refused.value) == (f"cannot write {tmp_path}/link.csv: another run (PID "
                                      f"{os.getpid()}) is writing it (lock file {out}.lock); "
                                      f"wait for it to end, or give another output")
        with pytest.raises(UserError) as refused, RunFiles(str(tmp_path / "hard.csv")).locked():
            pass
        assert str(refused.value).startswith(f"cannot write {tmp_path}/hard.csv: another run is "
                                             f"writing the same file under another name")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hard.csv", "link.csv",
                                                                "out.csv"]
    with RunFiles(str(tmp_path / "hard.csv")).locked():  # once the first has ended
        pass


def test_a_file_a_run_makes_is_held_once_made(tmp_path):
    run = RunFiles(str(tmp_path / "new.csv"))
    with run.locked():
        (tmp_path / "new.csv").write_text("label,path,prediction,proposed_label\r\n")
        run.hold(str(tmp_path / "new.csv"))  # as the life cycle does once the CSV is open
        os.link(tmp_path / "new.csv", tmp_path / "hard.csv")
        with pytest.raises(UserError), RunFiles(str(tmp_path / "hard.csv")).locked():
            pass


def test_two_runs_cannot_write_one_embeddings_file(tmp_path):
    npz = str(tmp_path / "e.npz")
    os.symlink("e.npz", tmp_path / "elink.npz")
    with RunFiles(str(tmp_path / "a.csv"), npz).locked():
        for path in (npz, str(tmp_path / "elink.npz")):
            with pytest.raises(UserError) as refused, \
                    RunFiles(str(tmp_path / "b.csv"), path).locked():
                pass
            assert str(refused.value) == (f"cannot write {path}: another run (PID "
                                          f"{os.getpid()}) is writing it (lock file {npz}.lock); "
                                          f"wait for it to end, or give another --embeddings "
                                          f"path")


def test_one_sweep_at_a_time_writes_into_a_folder(tmp_path):
    """Before: two sweeps with disjoint cells both wrote ``summary.csv``; it kept the last."""
    from stemeval.sweep.runner import summary_lock

    config = types.SimpleNamespace(output=str(tmp_path))
    with summary_lock(config):
        with pytest.raises(UserError) as refused, summary_lock(config):
            pass
    assert str(refused.value) == (f"cannot write {tmp_path}/summary.csv: another sweep (PID "
                                  f"{os.getpid()}) is writing it (lock file "
                                  f"{tmp_path}/summary.csv.lock); wait for it to end, or give "
                                  f"another folder")
    assert list(tmp_path.iterdir()) == []
    with locked_path(str(tmp_path / "summary.csv"), "sweep"):
        pass


@pytest.mark.parametrize("case", ["dangling", "loop"])
def test_a_link_that_names_no_file_is_named_so(tmp_path, case):
    """Before: "it is not a regular file (a device or a pipe)"."""
    target = "nowhere/x.csv" if case == "dangling" else "out.csv"
    os.symlink(target, tmp_path / "out.csv")
    with pytest.raises(UserError) as refused:
        RunFiles(str(tmp_path / "out.csv")).check()
    said = ("it is a symbolic link to nowhere/x.csv, which does not exist" if case == "dangling"
            else "it is a symbolic link that leads back to itself (a loop)")
    assert str(refused.value) == (f"cannot write the output {tmp_path}/out.csv: {said}; remove "
                                  f"the link, or give another path")
    with pytest.raises(UserError) as refused:
        check_report_outputs([("JSON file", str(tmp_path / "out.csv"))])
    assert said in str(refused.value)


@pytest.mark.skipif(not os.path.isfile("/proc/version"), reason="no /proc")
def test_a_file_in_a_folder_that_takes_no_file_says_so(tmp_path):
    """Before: ``--output /proc/version`` blamed another run (PID unknown) holding a lock."""
    with pytest.raises(UserError) as refused:
        files = RunFiles("/proc/version")
        files.check()
        with files.locked():
            pass
    assert "another run" not in str(refused.value)
    assert str(refused.value).startswith(("cannot write /proc/version: its lock file "
                                          "/proc/version.lock cannot be made (",
                                          "cannot write the output /proc/version: permission"))


def test_the_evaluation_command_refuses_a_link_to_a_running_output(tmp_path):
    """Through analyze_dsd100.py (in this process): a second run through a link to the
    output of a run in progress stops before any model is loaded, naming the first."""
    song = tmp_path / "tree" / "Dev" / "000 - A"
    dataset_trees.audio(song / "bass.wav")
    out = tmp_path / "out.csv"
    out.write_text(",".join(HEADER[:4]) + "\r\n")
    os.symlink("out.csv", tmp_path / "link.csv")
    with RunFiles(str(out)).locked():
        result = run_script("analyze_dsd100.py", "tree", "--quiet", "--output", "link.csv",
                            "--checkpoint", "absent.pth", "--speech-model", "absent.pb",
                            cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot write link.csv: another run (PID {os.getpid()}) is writing it (lock "
        f"file {out}.lock); wait for it to end, or give another output")
    assert out.read_bytes() == (",".join(HEADER[:4]) + "\r\n").encode()


def test_a_sidecar_that_records_no_run_is_not_resumed_past(tmp_path):
    """Before: a JSON report written over the sidecar let a resume with other weights go on
    without a check (one CSV then mixed two models)."""
    from stemeval.runfiles.sidecar import read_previous

    run = fake_run(tmp_path)
    (tmp_path / "out.csv.json").write_text(json.dumps({"accuracy": 0.5, "total": 8}))
    with pytest.raises(UserError) as refused:
        read_previous(str(run))
    assert str(refused.value) == (f"cannot resume {run}: its sidecar {run}.json cannot be read "
                                  f"(it records no run identity: it is not a sidecar a run "
                                  f"wrote), so what made its rows cannot be checked; restore "
                                  f"it, or drop --resume to start anew")


def test_a_second_sweep_into_the_folder_of_a_running_one_is_refused(tmp_path):
    """Through sweep.py (in this process): a sweep of other cells into the folder of a sweep
    in progress (its folder's lock held) stops before any model is loaded, naming it,
    where both once wrote ``summary.csv`` and it kept the sweep that ended last."""
    from stemeval.sweep.runner import summary_lock

    dataset_trees.audio(tmp_path / "tree" / "s1" / "bass" / "a.wav")
    (tmp_path / "sweep.toml").write_text(
        'output = "out"\ntaggers = ["ast"]\nconditions = ["clean"]\n'
        '[datasets.toy]\nlayout = "moisesdb"\nfolder = "tree"\n'
        '[checkpoints]\nast = "ast.pth"\n[options]\nspeech_model = "speech.pb"\nworkers = 0\n')
    for name in ("ast.pth", "speech.pb"):  # never read: the sweep stops before
        dataset_trees.text(tmp_path / name, "not a model\n")
    (tmp_path / "out").mkdir()
    with summary_lock(types.SimpleNamespace(output=str(tmp_path / "out"))):
        result = run_script("sweep.py", "sweep.toml", "--quiet", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == (f"error: cannot write out/summary.csv: another sweep (PID "
                             f"{os.getpid()}) is writing it (lock file "
                             f"out/summary.csv.lock); wait for it to end, or give another "
                             f"folder\n")
    assert sorted(str(path.relative_to(tmp_path / "out"))
                  for path in (tmp_path / "out").rglob("*")) == ["toy", "toy/ast"]

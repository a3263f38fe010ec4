"""One life cycle for a run's files (stemeval/runfiles/lifecycle.py), through the command
lines in this process: an evaluation run and every sweep cell (local and Ray) resume and
check their identity with the same code, so weights overwritten in place refuse both, a
sweep cell keeps its kept scores as a run does (``stemeval score CELL.csv --map`` derives
its rows again, as a run with that map writes them), a cell's kept scores are resumed and
refused as a run's are, and no module but the life cycle plans a resume, checks an identity
or opens a run's files."""

import ast
import csv
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from stemeval.commands import evaluate as evaluate_command
from stemeval.commands import score as score_command
from stemeval.commands import sweep as sweep_command
from stemeval.common.errors import exit_status
from stemeval.labels.audioset import INSTRUMENT_LABELS
from stemeval.runfiles.sidecar import sha256
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
STEMS = ["s1/bass/a.wav", "s1/drums/b.wav", "s2/bass/c.wav", "s2/guitar/d.wav",
         "s2/vocals/quiet.wav"]  # the silent one is an error row, which has no kept scores
CONFIG = """
output = "out"
taggers = ["ast"]
conditions = ["clean", "lowpass:cutoff=2000"]
[datasets.toy]
layout = "moisesdb"
folder = "tree"
[checkpoints]
ast = "ast.pth"
[options]
speech_model = "speech.pb"
workers = 0
chunk = 2
"""
CELLS = {"clean": "clean", "lowpass_cutoff=2000,rolloff=12": "lowpass:cutoff=2000,rolloff=12"}
CELL = "out/toy/ast/{}.csv"


def project(folder):
    """A MoisesDB tree of tiny stems (one silent), random AST weights, a speech graph, a
    sweep config."""
    for index, relative in enumerate(STEMS):
        path = folder / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = (silence(1.0, RATE) if "quiet" in relative else
                 concat(tone(0.8, RATE, 150 + 90 * index, seed=index), silence(0.6, RATE),
                        tone(0.5, RATE, 400, seed=index)))
        write_wav(path, audio, RATE)
    save_original_checkpoint(random_model(seed=5), folder / "ast.pth")
    write_constant_speech_graph(folder / "speech.pb", logit_for_score(5.0))
    (folder / "sweep.toml").write_text(CONFIG)
    return folder


@contextmanager
def inside(folder):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)


def sweep(folder, *args):
    """``stemeval sweep sweep.toml`` in ``folder``; its exit status."""
    with inside(folder):
        return exit_status(lambda: sweep_command.main(["sweep.toml", "--quiet", *args]))


def evaluate(folder, *args):
    """``stemeval evaluate moisesdb tree`` with the project's models, in ``folder``."""
    argv = ["moisesdb", "tree", "--checkpoint", "ast.pth", "--speech-model", "speech.pb",
            "--workers", "0", "--quiet", *map(str, args)]
    with inside(folder):
        return exit_status(lambda: evaluate_command.main(argv))


def score(folder, *args):
    """``stemeval score`` in ``folder``."""
    with inside(folder):
        return exit_status(lambda: score_command.main([str(arg) for arg in args]))


def refused(capsys):
    """The one ``error:`` line on stderr, without its prefix."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0][len("error: "):]


def snapshot(folder):
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def cut(path, rows):
    """Keep the header and the first ``rows`` rows of a results CSV, as a stopped run would."""
    lines = Path(path).read_bytes().split(b"\r\n")
    Path(path).write_bytes(b"\r\n".join(lines[:rows + 1]) + b"\r\n")


def without_paths(identity):
    """An identity without its files' paths (a moved project's differ; their sha256 do not)."""
    return {key: {k: v for k, v in value.items() if k != "path"} if isinstance(value, dict)
            else value for key, value in identity.items()}


def keep_only(scores, paths):
    """Kept scores ``scores`` (their arrays) with only the entries of ``paths``."""
    chosen = np.isin(scores["paths"], list(paths))
    return {name: value[chosen] if name in ("scores", "gated", "speech_rule", "paths",
                                            "labels", "groups") else value
            for name, value in scores.items()}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A sweep run to the end, and a plain evaluation run of the same tree (``run.csv``)."""
    folder = project(tmp_path_factory.mktemp("swept"))
    assert sweep(folder) == 0
    assert evaluate(folder, "--output", "run.csv") == 0
    return folder


# --- Weights overwritten in place -------------------------------------------------------

def _overwrite_weights(folder):
    """New random weights saved over ``ast.pth`` (the same path, new bytes); the old and new
    sha256."""
    old = sha256(folder / "ast.pth")
    save_original_checkpoint(random_model(seed=6), folder / "ast.pth")
    new = sha256(folder / "ast.pth")
    assert new != old
    return old, new


def test_a_run_resumed_after_its_weights_were_overwritten_in_place_is_refused(tmp_path,
                                                                               capsys):
    folder = project(tmp_path)
    assert evaluate(folder, "--output", "run.csv") == 0
    cut(folder / "run.csv", rows=2)  # a run stopped after two rows
    old, new = _overwrite_weights(folder)
    before = snapshot(folder)
    capsys.readouterr()
    assert evaluate(folder, "--output", "run.csv", "--resume") == 2
    weights = (folder / "ast.pth").resolve()
    assert refused(capsys) == (f"cannot resume run.csv: its sidecar run.csv.json names weights "
                               f"{weights} (sha256 {old[:12]}), this run uses {weights} "
                               f"(sha256 {new[:12]})")
    assert snapshot(folder) == before


def test_a_sweep_cell_resumed_after_its_weights_were_overwritten_in_place_is_refused(
        tmp_path, capsys):
    folder = project(tmp_path)
    assert sweep(folder) == 0
    cut(folder / CELL.format("clean"), rows=2)  # a sweep stopped in its first cell
    old, new = _overwrite_weights(folder)
    before = snapshot(folder)
    weights = (folder / "ast.pth").resolve()
    cell = CELL.format("clean")
    for runner in ((), ("--ray",)):  # the local runner and Ray's refuse before any work
        capsys.readouterr()
        assert sweep(folder, *runner) == 2, runner
        assert refused(capsys) == (f"cannot resume {cell}: its sidecar {cell}.json names weights "
                                   f"{weights} (sha256 {old[:12]}), this run uses {weights} "
                                   f"(sha256 {new[:12]})")
        assert snapshot(folder) == before


# --- A sweep cell's kept scores -----------------------------------------------------------

def test_each_sweep_cell_keeps_its_kept_scores_as_a_run_does(swept):
    run_sidecar = json.loads((swept / "run.csv.json").read_text())
    for name in CELLS:
        cell = swept / CELL.format(name)
        rows = rows_of(cell)
        kept = arrays(f"{cell}.scores.npz")
        sidecar = json.loads(Path(f"{cell}.json").read_text())
        assert sidecar["scores"] == f"{CELL.format(name)}.scores.npz"
        assert json.loads(str(kept["identity"])) == sidecar["identity"]
        assert str(kept["tagger"]) == "ast" and kept["scores"].shape == (4, 527)
        assert list(kept["paths"]) == sorted(row["path"] for row in rows
                                             if row["prediction"] != "error")
        assert len(rows) == 5 and not Path(f"{cell}.scores.npz.part").exists()
        labels = {row["path"]: row["label"] for row in rows}
        assert [labels[path] for path in kept["paths"]] == list(kept["labels"])
    # the clean cell is a plain run: the same identity (made from the same inputs) and the
    # same kept scores (to float32's last bits: the stems are batched otherwise)
    clean = swept / CELL.format("clean")
    assert json.loads(Path(f"{clean}.json").read_text())["identity"] == run_sidecar["identity"]
    cell, run = arrays(f"{clean}.scores.npz"), arrays(swept / "run.csv.scores.npz")
    assert sorted(cell) == sorted(run)
    for key, value in run.items():
        if key == "scores":
            np.testing.assert_allclose(cell[key], value, rtol=1e-5, atol=1e-7)
        else:
            np.testing.assert_array_equal(cell[key], value, err_msg=key)


def _other_map(swept, path):
    """A map that sends every label the cells predict to a category other than the one the
    dataset's map gives the first of them, and other labels to the other categories."""
    rows = [row for name in CELLS for row in rows_of(swept / CELL.format(name))
            if row["prediction"] != "error"]
    predicted = sorted({row["prediction"] for row in rows})
    target = next(category for category in ("guitar", "bass")
                  if category != rows[0]["proposed_label"])
    spare = iter(name for name in INSTRUMENT_LABELS if name.lower() not in predicted)
    lines = [f"{target} = {json.dumps(predicted)}"]
    lines += [f"{category} = {json.dumps([next(spare), next(spare)])}"
              for category in ("bass", "drums", "guitar", "vocals") if category != target]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_score_map_derives_a_sweep_cells_rows_again_as_a_run_with_that_map(swept, tmp_path,
                                                                           capsys):
    other = _other_map(swept, tmp_path / "other.toml")
    for name, spec in CELLS.items():
        cell = CELL.format(name)
        plain = tmp_path / f"{name}.csv"
        assert evaluate(swept, "--deform", spec, "--map", other, "--output", plain) == 0
        capsys.readouterr()
        assert score(swept, cell, "--map", other) == 0
        remapped = capsys.readouterr().out.splitlines()
        assert remapped[0].startswith(f"Re-mapped: every row of {cell} derived again from its "
                                      f"kept scores {cell}.scores.npz")
        assert score(swept, plain) == 0
        assert remapped[1:] == capsys.readouterr().out.splitlines()
        assert score(swept, cell) == 0
        assert remapped[1:] != capsys.readouterr().out.splitlines()  # the map changes rows


def test_a_stopped_sweep_cell_goes_on_with_its_kept_scores(swept, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(swept, folder)
    name = "lowpass_cutoff=2000,rolloff=12"
    cell = folder / CELL.format(name)
    whole, whole_scores = cell.read_bytes(), arrays(f"{cell}.scores.npz")
    cut(cell, rows=2)  # what Ctrl-C after two rows leaves: two rows, their kept scores
    np.savez(f"{cell}.scores.npz", **keep_only(whole_scores, [r["path"] for r in rows_of(cell)]))
    assert sweep(folder) == 0
    assert cell.read_bytes() == whole
    resumed = arrays(f"{cell}.scores.npz")
    assert sorted(resumed) == sorted(whole_scores)
    for key, value in whole_scores.items():
        if key == "scores":
            np.testing.assert_allclose(resumed[key], value, rtol=1e-5, atol=1e-7)
        elif key == "identity":  # this session's (the copy's model files' paths)
            identity = json.loads(str(resumed[key]))
            assert identity == json.loads(Path(f"{cell}.json").read_text())["identity"]
            assert without_paths(identity) == without_paths(json.loads(str(value)))
        else:
            np.testing.assert_array_equal(resumed[key], value, err_msg=key)
    sessions = json.loads(Path(f"{cell}.json").read_text())["sessions"]
    assert [session["stems_written"] for session in sessions] == [5, 3]
    assert not Path(f"{cell}.scores.npz.part").exists()


def test_kept_scores_lacking_kept_rows_refuse_a_sweep_cell_as_they_refuse_a_run(swept,
                                                                               tmp_path,
                                                                               capsys):
    folder = tmp_path / "copy"
    shutil.copytree(swept, folder)  # moved: its sidecars name the weights where they were
    rows = rows_of(folder / "run.csv")
    dropped = [row["path"] for row in rows if row["prediction"] != "error"][1:3]
    for results in ("run.csv", CELL.format("clean")):
        scores = folder / f"{results}.scores.npz"
        kept = arrays(scores)
        np.savez(scores, **keep_only(kept, set(kept["paths"]) - set(dropped)))
    before = snapshot(folder)
    capsys.readouterr()
    assert evaluate(folder, "--output", "run.csv", "--resume") == 2
    message = refused(capsys)
    assert message == (f"cannot resume run.csv: 2 of its 5 rows have no kept scores in "
                       f"run.csv.scores.npz (e.g. {dropped[0]}), so they would not hold the "
                       f"whole file's; drop --resume to start anew")
    assert sweep(folder) == 2
    assert refused(capsys) == message.replace("run.csv", CELL.format("clean"))
    assert snapshot(folder) == before


def test_a_sweep_cell_made_without_kept_scores_is_resumed_with_a_warning(swept, tmp_path,
                                                                        capsys):
    folder = tmp_path / "copy"
    shutil.copytree(swept, folder)
    cell = CELL.format("clean")
    cut(folder / cell, rows=2)
    (folder / f"{cell}.scores.npz").unlink()  # as a sweep before cells kept scores left it
    finished = {path: data for path, data in snapshot(folder / "out").items()
                if "lowpass" in path}
    capsys.readouterr()
    assert sweep(folder) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "kept scores" in line]
    assert warnings == [f"warning: {cell} has 2 rows but no kept scores {cell}.scores.npz (it "
                        f"was made before scores were kept, or they were removed): the kept "
                        f"scores will hold only the rows this run writes"]
    rows = rows_of(folder / cell)
    assert list(arrays(folder / f"{cell}.scores.npz")["paths"]) == sorted(
        row["path"] for row in rows[2:] if row["prediction"] != "error")
    assert {path: data for path, data in snapshot(folder / "out").items()
            if "lowpass" in path} == finished  # a finished cell is not written again
    assert score(folder, cell, "--map", ROOT / "stemeval/datasets/maps/moisesdb.toml") == 2
    assert refused(capsys) == (f"{cell}: 2 of its 5 rows have no kept scores in "
                               f"{cell}.scores.npz (e.g. {rows[0]['path']}); run the "
                               f"evaluation again to keep them")


# --- One owner ----------------------------------------------------------------------------

LIFECYCLE = ROOT / "stemeval" / "runfiles" / "lifecycle.py"
# what plans a resume, checks an identity, or opens and ends a run's files
LIFECYCLE_NAMES = {"Sidecar", "ResultWriter", "EmbeddingStore", "KeptScoresStore", "RunFiles",
                   "read_kept", "read_previous", "stems_to_do", "left_out_stems",
                   "condition_identity", "model_identity", "identity_key", "header_of",
                   "maker", "scores_path", "Resume", "check_same_identity",
                   "check_covers_kept_rows"}
RESUME_CHECKS = {"check_same_identity", "check_covers_kept_rows"}


def names_used(path):
    """Every name a module refers to: names, attributes and what it imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {alias.name.rpartition(".")[2] for alias in node.names}
    return found


def test_only_the_life_cycle_plans_a_resume_or_checks_an_identity():
    modules = sorted((ROOT / "stemeval").rglob("*.py"))
    callers = {str(path.relative_to(ROOT)) for path in modules
               if names_used(path) & RESUME_CHECKS}
    assert callers == {"stemeval/runfiles/lifecycle.py"}
    assert not [path for path in modules if "check_resume" in names_used(path)]
    # the evaluation run and every sweep cell (the local and the Ray runner share
    # sweep/runner.py's cells) use it, and keep no copy of any of it
    users = {str(path.relative_to(ROOT)) for path in modules
             if "RunLifecycle" in names_used(path) and path != LIFECYCLE}
    assert users == {"stemeval/engine/run.py", "stemeval/sweep/runner.py"}
    copies = {str(path.relative_to(ROOT)): sorted(names_used(path) & LIFECYCLE_NAMES)
              for path in [ROOT / "stemeval/engine/run.py",
                           *sorted((ROOT / "stemeval/sweep").glob("*.py"))]}
    assert {path: names for path, names in copies.items() if names} == {}
    assert "open_datasets" in names_used(ROOT / "stemeval/sweep/ray_runner.py")

"""sweep.py on generated stems with random weights: the clean cell is a plain run, a sweep
killed and restarted ends with the files of an uninterrupted one, a local Ray cluster writes
the same files (and kept scores), each stem is decoded once, and a bad config is one line
before any work. Every cell has a run's sidecar, checked when the sweep is run again; two
sweeps on one output do not both write; a condition that fails on every stem is marked
failed; repeats draw each random condition again, and the summary gives the spread of its
draws."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stemeval.common.errors import UserError
from stemeval.runfiles.sidecar import sha256
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
STEMS = ["s1/bass/a.wav", "s1/drums/b.wav", "s2/bass/c.wav", "s2/guitar/d.wav",
         "s2/vocals/quiet.wav"]
CONFIG = """
output = "out"
taggers = ["ast"]
conditions = ["clean", "noise:snr=5", "lowpass:cutoff=2000"]
[datasets.toy]
layout = "moisesdb"
folder = "tree"
[checkpoints]
ast = "ast.pth"
[options]
speech_model = "speech.pb"
workers = 0
chunk = {chunk}
"""
CELLS = ["clean.csv", "noise_snr=5.csv", "lowpass_cutoff=2000,rolloff=12.csv"]


def _project(folder, chunk=2):
    """A tree of tiny stems (one silent), random AST weights, a speech graph, a config."""
    for index, relative in enumerate(STEMS):
        path = folder / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = (silence(1.0, RATE) if "quiet" in relative else
                 concat(tone(0.8, RATE, 150 + 90 * index, seed=index), silence(0.6, RATE),
                        tone(0.5, RATE, 400, seed=index)))
        write_wav(path, audio, RATE)
    save_original_checkpoint(random_model(seed=5), folder / "ast.pth")
    write_constant_speech_graph(folder / "speech.pb", logit_for_score(5.0))
    (folder / "sweep.toml").write_text(CONFIG.format(chunk=chunk))
    return folder


def _files(folder, kept_scores=False):
    """Every file a sweep wrote, but for the plot (images are not compared byte for byte),
    the cells' sidecars (they hold times) and, unless ``kept_scores``, the cells' kept scores
    (they hold the identity, with the model files' absolute paths: ``_kept_scores`` compares
    them)."""
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()
            and path.suffix != ".png" and not path.name.endswith(".csv.json")
            and (kept_scores or not path.name.endswith(".csv.scores.npz"))}


def _kept_scores(folder):
    """Each cell's kept scores: their arrays, the identity read from its JSON with the model
    files' paths left out (they name the folder the sweep ran in)."""
    found = {}
    for path in sorted(folder.rglob("*.csv.scores.npz")):
        with np.load(path, allow_pickle=False) as saved:
            arrays = {name: saved[name] for name in saved.files}
        identity = json.loads(str(arrays.pop("identity")))
        arrays["identity"] = {key: ({k: v for k, v in value.items() if k != "path"}
                                    if isinstance(value, dict) else value)
                              for key, value in identity.items()}
        found[str(path.relative_to(folder))] = arrays
    return found


def _assert_same_kept_scores(folder, other, exact=True):
    """The cells' kept scores under ``folder`` are those under ``other``: the same stems,
    classes and identity, and the same scores (``exact``), or the same to float32's last bits
    (stems batched otherwise: see the README's kept scores)."""
    found, expected = _kept_scores(folder), _kept_scores(other)
    assert sorted(found) == sorted(expected) and found
    for name, arrays in expected.items():
        assert sorted(found[name]) == sorted(arrays), name
        for key, value in arrays.items():
            if key == "identity":
                assert found[name][key] == value, name
            elif key == "scores" and not exact:
                np.testing.assert_allclose(found[name][key], value, rtol=1e-5, atol=1e-7,
                                           err_msg=name)
            else:
                np.testing.assert_array_equal(found[name][key], value, err_msg=f"{name} {key}")


def _sweep(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One sweep run to the end in this process, counting the stems' decodes."""
    import stemeval.engine.pipeline as pipeline
    from stemeval.commands.sweep import main

    folder = _project(tmp_path_factory.mktemp("uninterrupted"))
    decoded = []
    real_decode = pipeline.decode
    pipeline.decode = lambda path: decoded.append(path) or real_decode(path)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["sweep.toml", "--quiet"]) == 0
    finally:
        os.chdir(cwd)
        pipeline.decode = real_decode
    return folder, _files(folder / "out"), decoded


def test_layout_summary_and_plot(uninterrupted):
    folder, files, _ = uninterrupted
    assert sorted(files) == sorted([f"toy/ast/{name}" for name in CELLS] +
                                   ["summary.csv", "summary.json"])
    assert (folder / "out/accuracy.png").stat().st_size > 0
    summary = files["summary.csv"].decode().splitlines()
    assert summary[0] == ("dataset,tagger,condition,deformation,parameter,strength,stems,"
                          "accuracy,macro_f1,accuracy_drop,macro_f1_drop")
    assert summary[1].startswith("toy,ast,clean,,,,5,")
    assert summary[1].split(",")[-2:] == ["0.0", "0.0"]
    assert summary[2].startswith("toy,ast,noise:snr=5,noise,snr,5.0,5,")


def test_each_stem_is_decoded_once_per_sweep(uninterrupted):
    _, _, decoded = uninterrupted
    assert sorted(decoded) == sorted(f"tree/{relative}" for relative in STEMS)


def test_clean_cell_is_a_plain_run(uninterrupted, tmp_path):
    folder, files, _ = uninterrupted
    result = subprocess.run(
        [sys.executable, str(ROOT / "analyze_moisesdb.py"), "tree", "--checkpoint", "ast.pth",
         "--speech-model", "speech.pb", "--output", str(tmp_path / "plain.csv"), "--quiet"],
        cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert files["toy/ast/clean.csv"] == (tmp_path / "plain.csv").read_bytes()
    assert files["toy/ast/clean.csv"].count(b"\r\n") == 6


def test_killed_and_restarted_ends_with_the_same_files(uninterrupted, tmp_path):
    folder = _project(tmp_path, chunk=1)
    first_cell = folder / "out/toy/ast/clean.csv"
    process = subprocess.Popen([sys.executable, str(ROOT / "sweep.py"), "sweep.toml", "--quiet"],
                               cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if first_cell.exists() and first_cell.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (folder / "out/summary.csv").exists(), "the sweep ended before the kill"
    result = _sweep("sweep.toml", "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert _files(folder / "out") == uninterrupted[1]
    _assert_same_kept_scores(folder / "out", uninterrupted[0] / "out", exact=False)


def test_ray_writes_the_files_of_a_local_sweep(uninterrupted, tmp_path):
    import ray

    from stemeval.sweep.config import load_config
    from stemeval.sweep.ray_runner import run_ray

    folder = _project(tmp_path)
    cwd = os.getcwd()
    os.chdir(folder)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    try:
        run_ray(load_config("sweep.toml"), quiet=True)
    finally:
        ray.shutdown()
        os.chdir(cwd)
    cells = {name: data for name, data in uninterrupted[1].items() if name.startswith("toy/")}
    assert _files(folder / "out") == cells
    _assert_same_kept_scores(folder / "out", uninterrupted[0] / "out")


@pytest.mark.parametrize("edit, message", [
    (('taggers = ["ast"]', 'taggers = ["ast", "beats"]'),
     "unknown tagger 'beats' (valid: ast, panns-cnn14, passt, clap, or hf:<repo id>)"),
    (('"noise:snr=5"', '"echo:delay=3"'), "condition echo:delay=3: unknown deformation 'echo'"),
    (('"noise:snr=5"', '"noise:level=5"'), "unknown parameter 'level' of noise (valid: snr)"),
    (('folder = "tree"', 'folder = "nowhere"'), "datasets.toy: nowhere: no such folder"),
    (('layout = "moisesdb"', 'layout = "slakh9"'), "datasets.toy: unknown layout 'slakh9'"),
    (("chunk = 2", "chunk = 0"), "options.chunk must be an integer of at least 1"),
    (("[options]", "[option]"), "unknown key 'option' in the config"),
    (('output = "out"', 'output = "out'), "not valid TOML"),
])
def test_bad_config_is_one_line_before_any_work(tmp_path, edit, message):
    from stemeval.sweep.config import load_config

    folder = _project(tmp_path)
    config = folder / "sweep.toml"
    config.write_text(config.read_text().replace(*edit))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with pytest.raises(UserError) as error:
            load_config("sweep.toml")
    finally:
        os.chdir(cwd)
    assert str(error.value).startswith("sweep.toml: ") and message in str(error.value)


def test_bad_config_on_the_command_line(tmp_path):
    folder = _project(tmp_path)
    config = folder / "sweep.toml"
    config.write_text(config.read_text().replace('"noise:snr=5"', '"noise:snr=5,colour=pink"'))
    result = _sweep("sweep.toml", cwd=folder)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: sweep.toml: condition noise:snr=5,colour=pink: "
                                     "unknown parameter 'colour' of noise (valid: snr)")
    assert not (folder / "out").exists()


def test_config_takes_every_registered_tagger(tmp_path):
    from stemeval.sweep.config import load_config

    folder = _project(tmp_path)
    config = folder / "sweep.toml"
    config.write_text(config.read_text().replace(
        'taggers = ["ast"]', 'taggers = ["ast", "panns-cnn14", "passt", "clap", "hf:org/model"]'))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        taggers = load_config("sweep.toml").taggers
    finally:
        os.chdir(cwd)
    assert taggers == ("ast", "panns-cnn14", "passt", "clap", "hf:org/model")


def test_cells_have_the_sidecar_a_run_has(uninterrupted):
    folder = uninterrupted[0]
    for name, spec in zip(CELLS, ("clean", "noise:snr=5", "lowpass:cutoff=2000,rolloff=12")):
        record = json.loads((folder / "out/toy/ast" / f"{name}.json").read_text())
        assert (record["identity"]["tagger"], record["identity"]["deform"]) == ("ast", spec)
        assert record["identity"]["weights"]["sha256"] == sha256(folder / "ast.pth")
        assert record["identity"]["dataset"] == "moisesdb"
        assert record["stems"] == 5 and record["finished"] is not None
        assert [session["stems_written"] for session in record["sessions"]] == [5]


def test_a_sweep_run_again_with_other_weights_is_refused(uninterrupted, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(uninterrupted[0], folder)
    save_original_checkpoint(random_model(seed=6), folder / "ast.pth")
    before = _files(folder / "out", kept_scores=True)
    result = _sweep("sweep.toml", "--quiet", cwd=folder)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot resume out/toy/ast/clean.csv: its sidecar "
                                    "out/toy/ast/clean.csv.json names weights ")
    assert len(result.stderr.splitlines()) == 1
    assert _files(folder / "out", kept_scores=True) == before


def test_two_sweeps_on_one_output_do_not_both_write(uninterrupted, tmp_path):
    folder = _project(tmp_path)
    sweeps = [subprocess.Popen([sys.executable, str(ROOT / "sweep.py"), "sweep.toml", "--quiet"],
                               cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True) for _ in range(2)]
    errors = [sweep.communicate(timeout=600)[1] for sweep in sweeps]
    assert sorted(sweep.returncode for sweep in sweeps) == [0, 2], errors
    winner = next(sweep for sweep in sweeps if sweep.returncode == 0)
    assert errors[[sweep.returncode for sweep in sweeps].index(2)] == (
        f"error: cannot write out/toy/ast/clean.csv: another run (PID {winner.pid}) is writing "
        f"it (lock file out/toy/ast/clean.csv.lock); wait for it to end, or give another "
        f"output\n")
    assert _files(folder / "out") == uninterrupted[1]
    _assert_same_kept_scores(folder / "out", uninterrupted[0] / "out")


def test_a_condition_that_fails_on_every_stem_is_marked_failed(tmp_path):
    folder = _project(tmp_path)
    config = folder / "sweep.toml"
    config.write_text(config.read_text().replace('"noise:snr=5", "lowpass:cutoff=2000"',
                                                 '"lowpass:cutoff=30000"'))
    result = _sweep("sweep.toml", "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    with open(folder / "out/summary.csv", newline="") as handle:
        clean, failed = csv.DictReader(handle)
    assert float(clean["accuracy"]) >= 0 and clean["accuracy_drop"] == "0.0"
    assert (failed["accuracy"], failed["macro_f1"], failed["accuracy_drop"]) == ("failed", "", "")
    cell = json.loads((folder / "out/summary.json").read_text())["cells"][1]
    assert (cell["failed"], cell["errors"], cell["stems"], cell["accuracy"],
            cell["accuracy_drop"]) == (True, 5, 5, None, None)
    line = next(line for line in result.stdout.splitlines() if "30000" in line)
    assert line.split()[3:6] == ["5", "5", "failed"]


def _cell_scores(path):
    """Accuracy and macro-F1 (over the ground-truth categories) of a cell, in percent, by
    scikit-learn."""
    from sklearn.metrics import accuracy_score, f1_score

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    truth = [row["label"] for row in rows]
    proposed = [row["proposed_label"] for row in rows]
    return (100 * accuracy_score(truth, proposed),
            100 * f1_score(truth, proposed, labels=sorted(set(truth)), average="macro"))


def test_repeats_draw_each_random_condition_with_its_own_seed(uninterrupted, tmp_path):
    folder = _project(tmp_path)
    config = folder / "sweep.toml"
    config.write_text(config.read_text().replace('output = "out"', 'output = "out"\nrepeats = 3'))
    result = _sweep("sweep.toml", "--quiet", cwd=folder)
    assert result.returncode == 0, result.stderr
    files = _files(folder / "out")
    noise = ["noise_snr=5.csv", "noise_snr=5@seed1.csv", "noise_snr=5@seed2.csv"]
    assert sorted(files) == sorted([f"toy/ast/{name}" for name in CELLS + noise[1:]] +
                                   ["summary.csv", "summary.json"])
    for name in CELLS:  # draw 0 and the conditions drawn once: the files of repeats = 1
        assert files[f"toy/ast/{name}"] == uninterrupted[1][f"toy/ast/{name}"]
    record = json.loads((folder / "out/toy/ast/noise_snr=5@seed2.csv.json").read_text())
    assert record["identity"]["deform"] == "noise:snr=5@seed2"
    plain = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "moisesdb", "tree", "--checkpoint",
         "ast.pth", "--speech-model", "speech.pb", "--deform", "noise:snr=5@seed2",
         "--output", str(tmp_path / "plain.csv"), "--quiet"],
        cwd=folder, capture_output=True, text=True, timeout=600)
    assert plain.returncode == 0, plain.stderr
    assert files["toy/ast/noise_snr=5@seed2.csv"] == (tmp_path / "plain.csv").read_bytes()
    assert result.stdout.splitlines()[-1] == (
        "drawn once, as their audio does not depend on the seed: clean, "
        "lowpass:cutoff=2000,rolloff=12")

    # Random weights name every stem alike, whatever the noise: give two draws other labels,
    # as other draws could have, so that the summary has a spread to report.
    for name, right in (("noise_snr=5@seed1.csv", 2), ("noise_snr=5@seed2.csv", 3)):
        path = folder / "out/toy/ast" / name
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        for row in rows[1:1 + right]:
            row[3] = row[0]
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    again = _sweep("sweep.toml", "--quiet", cwd=folder)
    assert again.returncode == 0, again.stderr
    with open(folder / "out/summary.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        summary = {row["condition"]: row for row in reader}
    assert reader.fieldnames == ["dataset", "tagger", "condition", "deformation", "parameter",
                                 "strength", "stems", "accuracy", "macro_f1", "accuracy_drop",
                                 "macro_f1_drop", "draws", "accuracy_min", "accuracy_max",
                                 "macro_f1_min", "macro_f1_max"]
    assert list(summary) == ["clean", "noise:snr=5", "lowpass:cutoff=2000,rolloff=12"]
    scores = np.array([_cell_scores(folder / "out/toy/ast" / name) for name in noise])
    clean = _cell_scores(folder / "out/toy/ast/clean.csv")
    row = summary["noise:snr=5"]
    assert row["draws"] == "3" and scores[:, 0].min() < scores[:, 0].max()
    for key, column in (("accuracy", 0), ("macro_f1", 1)):
        assert float(row[key]) == pytest.approx(scores[:, column].mean(), abs=1e-4)
        assert float(row[f"{key}_min"]) == pytest.approx(scores[:, column].min(), abs=1e-4)
        assert float(row[f"{key}_max"]) == pytest.approx(scores[:, column].max(), abs=1e-4)
        assert float(row[f"{key}_drop"]) == pytest.approx(clean[column] - scores[:, column].mean(),
                                                          abs=1e-3)
    assert summary["lowpass:cutoff=2000,rolloff=12"]["draws"] == "1"
    cells = json.loads((folder / "out/summary.json").read_text())["cells"]
    assert [(cell["condition"], cell["draw"]) for cell in cells] == [
        ("clean", 0), ("noise:snr=5", 0), ("noise:snr=5", 1), ("noise:snr=5", 2),
        ("lowpass:cutoff=2000,rolloff=12", 0)]
    assert [cell["accuracy"] for cell in cells[1:4]] == pytest.approx(list(scores[:, 0]),
                                                                      abs=1e-4)


@pytest.mark.parametrize("edit, message", [
    (('output = "out"', 'output = "out"\nrepeats = 0'),
     "repeats must be a whole number of draws, 1 or more, not 0"),
    (('output = "out"', 'output = "out"\nrepeats = true'),
     "repeats must be a whole number of draws, 1 or more, not True"),
    (('"noise:snr=5"', '"noise:snr=5@seed1"'),
     "condition 'noise:snr=5@seed1': draws are not listed; set repeats = N"),
])
def test_bad_repeats_are_one_line_before_any_work(tmp_path, edit, message):
    folder = _project(tmp_path)
    config = folder / "sweep.toml"
    config.write_text(config.read_text().replace(*edit))
    result = _sweep("sweep.toml", cwd=folder)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: sweep.toml: {message}")
    assert len(result.stderr.splitlines()) == 1 and not (folder / "out").exists()

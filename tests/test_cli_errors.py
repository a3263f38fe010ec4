"""Bad input to the analyze scripts: one line on stderr, a non-zero exit, no traceback;
an unreadable stem gets an error row and the run goes on. (The script runs in this process,
as its own would run it: tests/helpers/cli.py.)"""

import csv
import os
import pickle
from pathlib import Path

import pytest
import torch

from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.cli import run_script
from tests.helpers.signals import tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return (save_original_checkpoint(random_model(), folder / "audio_mdl.pth"),
            write_constant_speech_graph(folder / "speech.pb", logit_for_score(20.0)))


@pytest.fixture
def tree(tmp_path):
    stems = tmp_path / "tree" / "Dev" / "song"
    stems.mkdir(parents=True)
    write_wav(stems / "bass.wav", tone(1.5, 16000), 16000)
    (stems / "drums.wav").write_bytes(b"RIFF not really a wav file")
    return tmp_path / "tree"


def analyze(*args, cwd):
    return run_script("analyze_dsd100.py", *args, cwd=cwd)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("option, value, minimum", [
    ("--batch-size", "abc", 1), ("--batch-size", "0", 1), ("--workers", "-1", 0),
    ("--workers", "2.5", 0)])
def test_a_bad_number_names_its_option_and_what_it_takes(tmp_path, option, value, minimum):
    assert_one_line_error(analyze("tree", option, value, cwd=tmp_path),
                          f"argument {option}: takes a whole number of {minimum} or more, "
                          f"not '{value}'")


def test_missing_folder(tmp_path):
    assert_one_line_error(analyze("nowhere", cwd=tmp_path), "nowhere: no such folder")


def test_folder_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    assert_one_line_error(analyze("file", cwd=tmp_path), "file: not a folder")


def test_no_audio(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "notes.txt").write_text("x")
    assert_one_line_error(analyze("empty", cwd=tmp_path),
                          "no .wav or .mp3 stems found under empty")


def test_missing_weights(tmp_path, tree, models):
    result = analyze(tree, "--checkpoint", tmp_path / "none.pth", "--speech-model", models[1],
                     cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path / "none.pth"))
    assert not (tmp_path / "results_dsd100.csv").exists()


def test_missing_speech_model(tmp_path, tree, models):
    result = analyze(tree, "--checkpoint", models[0], "--speech-model", tmp_path / "none.pb",
                     cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path / "none.pb"))


def test_checkpoint_of_wrong_shape(tmp_path, tree, models):
    state = torch.load(models[0], weights_only=True)
    state["module.v.blocks.1.attn.qkv.weight"] = torch.zeros(10, 64)
    torch.save(state, tmp_path / "wrong.pth")
    result = analyze(tree, "--checkpoint", tmp_path / "wrong.pth", "--speech-model", models[1],
                     cwd=tmp_path)
    assert_one_line_error(result, "v.blocks.1.attn.qkv.weight")


def test_checkpoint_of_wrong_format(tmp_path, tree, models):
    (tmp_path / "text.pth").write_text("not weights")
    result = analyze(tree, "--checkpoint", tmp_path / "text.pth", "--speech-model", models[1],
                     cwd=tmp_path)
    assert_one_line_error(result, "text.pth")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("kind", ["pickle", "whole module"])
def test_checkpoint_holding_python_objects(tmp_path, tree, models, kind):
    """Refused with a reason of ours, never torch's advice to load it with weights_only=False."""
    path = tmp_path / "objects.pth"
    if kind == "pickle":
        with open(path, "wb") as handle:
            pickle.dump({"module.v.pos_embed": _Exploit()}, handle)
    else:
        torch.save(torch.nn.Linear(2, 2), path)
    result = analyze(tree, "--checkpoint", path, "--speech-model", models[1], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: AST weights {path} are not usable: the file holds more "
                             f"than tensors (pickled Python objects) and is refused, because "
                             f"loading it could run code\n")


def test_speech_model_not_a_graph(tmp_path, tree, models):
    (tmp_path / "bad.pb").write_bytes(b"\x00\x01 not a graph")
    result = analyze(tree, "--checkpoint", models[0], "--speech-model", tmp_path / "bad.pb",
                     cwd=tmp_path)
    assert_one_line_error(result, "bad.pb")


@pytest.mark.parametrize("output,fragment", [
    ("missing_folder/out.csv", "no folder"), (".", "it is a folder")])
def test_output_not_writable(tmp_path, tree, models, output, fragment):
    result = analyze(tree, "--checkpoint", models[0], "--speech-model", models[1],
                     "--output", output, cwd=tmp_path)
    assert_one_line_error(result, "cannot write the output", fragment)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_output_write_fails_midway(tmp_path, tree, models):
    result = analyze(tree, "--checkpoint", models[0], "--speech-model", models[1],
                     "--output", "/dev/full", "--quiet", cwd=tmp_path)
    assert_one_line_error(result, "cannot write the output /dev/full")


def test_unreadable_stem_gets_error_row(tmp_path, tree, models):
    result = analyze("tree", "--checkpoint", models[0], "--speech-model", models[1],
                     "--output", "out.csv", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[1] == "bass,tree/Dev/song/bass.wav,drum kit,drums" or rows[1].startswith("bass,")
    assert rows[2] == "drums,tree/Dev/song/drums.wav,error,error"
    failed = [line for line in result.stderr.splitlines() if "stem failed" in line]
    assert len(failed) == 1 and failed[0].startswith("warning: stem failed: tree/Dev/song/drums.wav: ")
    assert not [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_undecodable_stem_reason_is_short(tmp_path, tree, models):
    """The file, "cannot decode" and ffmpeg's last line, not ffmpeg's banner and build options."""
    (tree / "Dev" / "song" / "vocals.mp3").write_bytes(bytes(range(256)) * 4)
    result = analyze("tree", "--checkpoint", models[0], "--speech-model", models[1],
                     "--output", "out.csv", "--quiet", "--details", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        reasons = {row["path"]: row["error"] for row in csv.DictReader(handle)}
    expected = {"tree/Dev/song/drums.wav": "ValueError: cannot decode drums.wav (ffmpeg: Invalid "
                                           "data found when processing input)",
                "tree/Dev/song/vocals.mp3": "ValueError: cannot decode vocals.mp3 (ffmpeg: "}
    for path, start in expected.items():
        assert reasons[path].startswith(start) and len(reasons[path]) < 200, reasons[path]
        assert f"warning: stem failed: {path}: {reasons[path]}" in \
            result.stderr.splitlines()

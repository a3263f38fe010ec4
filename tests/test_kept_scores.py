"""The kept scores every evaluation run writes beside its CSV, through analyze_dsd100.py: they
are the scores the rows came from (checked against the --details columns and the published
pick written again in tests/helpers/published.py), a killed run resumed keeps them all, a
resume that would mix them is refused, and ``computeaccuracy.py --map`` on them gives, row
for row, what a run with that map writes."""

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stemeval.labels.audioset import AUDIOSET_LABELS
from tests.helpers import published
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.python_hooks import hooked_env
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import write_linear_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
LEVELS = (0.03, 0.03, 0.3, 0.3, 0.9, 0.9)  # per song: speech score < 8, 8-50, >= 50
STEMS = ("bass", "drums", "vocals")
RUNS = ("speechy", "plain")  # an AST that ranks Speech first, and one that does not


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A DSD100 tree whose songs the speech graph scores low, middling and high (its speech
    activation grows with the level), and both runs' CSVs (with --details) and kept scores."""
    base = tmp_path_factory.mktemp("kept")
    for song, level in enumerate(LEVELS):
        folder = base / "tree" / "Dev" / f"{song:03d} - S"
        folder.mkdir(parents=True)
        for index, name in enumerate(STEMS):
            write_wav(folder / f"{name}.wav",
                      concat(tone(1.6, RATE, 150 + 70 * index + 9 * song, level=level,
                                  seed=song), silence(0.6, RATE),
                             tone(0.4, RATE, 600, level=level, seed=index)), RATE)
    weight = np.zeros((6144, 8), np.float32)
    weight[:, 7] = 2 / 6144
    bias = np.zeros(8, np.float32)
    bias[7] = 3
    write_linear_graph(base / "speech.pb", weight, bias)
    speech = AUDIOSET_LABELS.index("Speech")
    save_original_checkpoint(random_model(seed=3, label_bias={speech: 8.0}), base / "speechy.pth")
    save_original_checkpoint(random_model(seed=3), base / "plain.pth")
    for name in RUNS:
        run(base, name, "--output", f"{name}.csv", "--details")
    return base


def command(base, checkpoint, *args):
    return [sys.executable, str(ROOT / "analyze_dsd100.py"), "tree", "--checkpoint",
            str(base / f"{checkpoint}.pth"), "--speech-model", str(base / "speech.pb"),
            "--quiet", "--workers", "0", *map(str, args)]


def analyze(base, checkpoint, *args, cwd=None):
    return subprocess.run(command(base, checkpoint, *args), cwd=cwd or base,
                          capture_output=True, text=True, timeout=600)


def run(base, checkpoint, *args, cwd=None):
    result = analyze(base, checkpoint, *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


def score(base, *args):
    result = subprocess.run([sys.executable, str(ROOT / "computeaccuracy.py"), *map(str, args)],
                            cwd=base, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def refused(result):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0][len("error: "):]


def snapshot(folder):
    return {path: path.read_bytes() for path in Path(folder).rglob("*") if path.is_file()}


@pytest.mark.parametrize("name", RUNS)
def test_kept_scores_are_what_each_row_was_made_from(setup, name):
    rows = rows_of(setup / f"{name}.csv")
    kept = arrays(setup / f"{name}.csv.scores.npz")
    sidecar = json.loads((setup / f"{name}.csv.json").read_text())
    assert sidecar["scores"] == f"{name}.csv.scores.npz"
    assert json.loads(str(kept["identity"])) == sidecar["identity"]
    assert str(kept["tagger"]) == "ast" and not kept["zero_shot"]
    assert list(kept["classes"]) == AUDIOSET_LABELS and kept["scores"].shape == (18, 527)
    assert sorted(kept["paths"]) == list(kept["paths"]) and set(kept["paths"]) == set(rows)
    lookup = {alias: category for category, aliases
              in published.LABEL_CATEGORIES["dsd100"].items() for alias in aliases}
    for path, label, group, scores, gated, rule in zip(
            kept["paths"], kept["labels"], kept["groups"], kept["scores"], kept["gated"],
            kept["speech_rule"]):
        row = rows[path]
        assert (label, group) == (row["label"], row["group"])
        speech_score = float(row["speech_score"])
        assert gated == (speech_score >= 50)
        if gated:
            assert (row["prediction"], row["proposed_label"]) == ("speech", "speech")
            assert np.isnan(scores).all() and rule == -1
            continue
        # the Speech rule's answer, where the pick asked it; else either answer gives the row
        answers = [rule == 1] if rule != -1 else [False, True]
        assert rule == -1 or (rule == 1) == (speech_score >= 8)
        for answer in answers:
            pick = published.published_prediction(scores, AUDIOSET_LABELS, 10 if answer else 0)
            assert (pick.lower(), lookup.get(pick.lower(), "other")) == (
                row["prediction"], row["proposed_label"])
        assert float(row["score"]) == scores[[n.lower() for n in AUDIOSET_LABELS].index(
            row["prediction"])]
        ranked = sorted(published.INSTRUMENT_LABELS,
                        key=lambda n: -scores[AUDIOSET_LABELS.index(n)])[:5]
        assert row["top5"] == "; ".join(f"{n} ({float(scores[AUDIOSET_LABELS.index(n)])!r})"
                                        for n in ranked)
    rules = set(kept["speech_rule"][~kept["gated"]])
    assert kept["gated"].sum() == 6
    assert rules == ({0, 1} if name == "speechy" else {-1})  # every case of the rule occurs


@pytest.mark.parametrize("name", RUNS)
def test_remapping_the_kept_scores_is_a_run_with_that_map(setup, tmp_path, name):
    other = tmp_path / "other.toml"
    other.write_text('bass = ["Timpani", "Percussion"]\nvocals = ["Speech"]\n'
                     'drums = ["Harp", "Accordion"]\n')
    run(setup, name, "--output", tmp_path / "rerun.csv", "--map", other)
    remapped = score(setup, f"{name}.csv", "--map", other).splitlines()
    assert remapped[0].startswith(f"Re-mapped: every row of {name}.csv derived again from "
                                  f"its kept scores {name}.csv.scores.npz")
    assert remapped[1:] == score(setup, tmp_path / "rerun.csv").splitlines()
    score(setup, f"{name}.csv", "--map", other, "--compare", tmp_path / "rerun.csv",
          "--json", tmp_path / "compare.json")
    report = json.loads((tmp_path / "compare.json").read_text())
    assert report["compare"]["matched"] == report["compare"]["identical"] == 18
    assert report["remapped"]["map"] == str(other)
    score(setup, f"{name}.csv", "--map", other, "--compare", f"{name}.csv",
          "--json", tmp_path / "self.json")
    changed = json.loads((tmp_path / "self.json").read_text())["compare"]["differ"]
    assert len(changed) >= 6  # the other map changes rows (the test could fail)


def test_the_kept_scores_give_back_the_files_own_rows(setup, tmp_path):
    own = ROOT / "stemeval" / "datasets" / "maps" / "dsd100.toml"
    score(setup, "speechy.csv", "--map", own, "--compare", "speechy.csv",
          "--json", tmp_path / "self.json")
    compared = json.loads((tmp_path / "self.json").read_text())["compare"]
    assert compared["matched"] == compared["identical"] == 18 and compared["differ"] == []


def test_scores_that_are_not_the_files_are_refused(setup, tmp_path):
    shutil.copy(setup / "speechy.csv", tmp_path / "out.csv")
    shutil.copy(setup / "plain.csv.scores.npz", tmp_path / "out.csv.scores.npz")
    result = subprocess.run([sys.executable, str(ROOT / "computeaccuracy.py"), "out.csv",
                             "--map", ROOT / "stemeval/datasets/maps/dsd100.toml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused(result).startswith("out.csv.scores.npz: the kept scores of tree/Dev/002 - "
                                      "S/bass.wav give the prediction 'timpani' where out.csv "
                                      "has 'speech': they are not the scores of its rows")


def test_a_killed_run_resumed_keeps_every_stems_scores(setup, tmp_path):
    process = subprocess.Popen(command(setup, "speechy", "--output", tmp_path / "k.csv",
                                       "--details", "--batch-size", "1"),
                               cwd=setup, stderr=subprocess.DEVNULL,
                               env=hooked_env(tmp_path / "hooks", pause_after_rows=4))
    output = tmp_path / "k.csv"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (
            output.exists() and output.read_bytes().count(b"\r\n") >= 5):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 5 <= output.read_bytes().count(b"\r\n") < 19, "the run was not stopped midway"
    assert (tmp_path / "k.csv.scores.npz.part").exists()
    run(setup, "speechy", "--output", tmp_path / "k.csv", "--details", "--resume",
        "--batch-size", "1")
    run(setup, "speechy", "--output", tmp_path / "whole.csv", "--details", "--batch-size", "1")
    assert output.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    resumed, whole = arrays(tmp_path / "k.csv.scores.npz"), arrays(tmp_path / "whole.csv.scores.npz")
    assert sorted(resumed) == sorted(whole)
    for key in whole:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)
    assert not (tmp_path / "k.csv.scores.npz.part").exists()


def _copy(setup, folder, name, scores=None):
    """``name``.csv and its sidecar as ``folder/out.csv``, with ``scores`` as its kept scores."""
    shutil.copy(setup / f"{name}.csv", folder / "out.csv")
    shutil.copy(setup / f"{name}.csv.json", folder / "out.csv.json")
    if scores is not None:
        np.savez(folder / "out.csv.scores.npz", **scores)


def test_a_resume_that_would_mix_kept_scores_is_refused(setup, tmp_path):
    _copy(setup, tmp_path, "speechy", arrays(setup / "plain.csv.scores.npz"))
    before = snapshot(tmp_path)
    message = refused(analyze(setup, "speechy", "--output", tmp_path / "out.csv", "--details",
                              "--resume"))
    assert message.startswith(f"cannot resume {tmp_path}/out.csv: its kept scores "
                              f"{tmp_path}/out.csv.scores.npz were made with weights "
                              f"{setup}/plain.pth (sha256 ")
    assert snapshot(tmp_path) == before

    fewer = arrays(setup / "speechy.csv.scores.npz")
    fewer.update({key: fewer[key][5:] for key in ("scores", "gated", "speech_rule", "paths",
                                                  "labels", "groups")})
    _copy(setup, tmp_path, "speechy", fewer)
    before = snapshot(tmp_path)
    message = refused(analyze(setup, "speechy", "--output", tmp_path / "out.csv", "--details",
                              "--resume"))
    assert message == (f"cannot resume {tmp_path}/out.csv: 5 of its 18 rows have no kept "
                       f"scores in {tmp_path}/out.csv.scores.npz (e.g. tree/Dev/000 - "
                       f"S/bass.wav), so they would not hold the whole file's; drop --resume "
                       f"to start anew")
    assert snapshot(tmp_path) == before


def test_a_file_without_kept_scores_is_resumed_with_a_warning(setup, tmp_path):
    _copy(setup, tmp_path, "speechy")
    lines = (tmp_path / "out.csv").read_bytes().split(b"\r\n")
    (tmp_path / "out.csv").write_bytes(b"\r\n".join(lines[:8]) + b"\r\n")
    result = run(setup, "speechy", "--output", tmp_path / "out.csv", "--details", "--resume")
    assert (f"warning: {tmp_path}/out.csv has 7 rows but no kept scores "
            f"{tmp_path}/out.csv.scores.npz") in result.stderr
    published = ("label", "path", "prediction", "proposed_label")  # --details' score column
    # differs in its last digits with the stems batched together
    assert [[row[c] for c in published] for row in rows_of(tmp_path / "out.csv").values()] == [
        [row[c] for c in published] for row in rows_of(setup / "speechy.csv").values()]
    kept = arrays(tmp_path / "out.csv.scores.npz")
    assert len(kept["paths"]) == 11
    result = subprocess.run([sys.executable, str(ROOT / "computeaccuracy.py"), "out.csv",
                             "--map", ROOT / "stemeval/datasets/maps/dsd100.toml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused(result) == ("out.csv: 7 of its 18 rows have no kept scores in "
                               "out.csv.scores.npz (e.g. tree/Dev/000 - S/bass.wav); run the "
                               "evaluation again to keep them")


def test_the_kept_scores_are_guarded_as_outputs(setup, tmp_path):
    (tmp_path / "out.csv.scores.npz").write_text("my notes\n")
    message = refused(analyze(setup, "plain", "--output", tmp_path / "out.csv"))
    assert message.startswith(f"cannot write the kept scores {tmp_path}/out.csv.scores.npz: "
                              f"it exists and is not a kept scores .npz")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.csv.scores.npz"]
    message = refused(analyze(setup, "plain", "--output", tmp_path / "b.csv", "--embeddings",
                              tmp_path / "b.csv.scores.npz"))
    assert message == (f"cannot write the kept scores {tmp_path}/b.csv.scores.npz: it is also "
                       f"the embeddings {tmp_path}/b.csv.scores.npz; give them different "
                       f"paths")

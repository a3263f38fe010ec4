"""sweep.py with ``embeddings = true``: each cell keeps its embeddings as a run's
--embeddings does (the clean cell's file is a plain run's), resumed with its rows; the
summary gives each cell's FAD and coverage against clean (oracles: audio-metrics' Fréchet
distance and NAVER's prdc on the cells' files) beside the accuracy drop, and distance.png."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
STEMS = [f"s{track}/{category}/{category}.wav" for track in range(4)
         for category in ("bass", "drums")]
CONFIG = """
output = "out"
taggers = ["ast"]
conditions = ["clean", "noise:snr=0", "lowpass:cutoff=1000"]
[datasets.toy]
layout = "moisesdb"
folder = "tree"
[checkpoints]
ast = "ast.pth"
[options]
speech_model = "speech.pb"
workers = 0
chunk = 3
embeddings = {embeddings}
"""
CELLS = ("clean", "noise_snr=0", "lowpass_cutoff=1000,rolloff=12")


def project(folder, embeddings="true"):
    for index, relative in enumerate(STEMS):
        path = folder / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, concat(tone(0.9, RATE, 120 + 85 * index, seed=index),
                               silence(0.6, RATE), tone(0.5, RATE, 300 + 50 * index, seed=index)),
                  RATE)
    save_original_checkpoint(random_model(seed=7), folder / "ast.pth")
    write_constant_speech_graph(folder / "speech.pb", logit_for_score(5.0))
    (folder / "sweep.toml").write_text(CONFIG.format(embeddings=embeddings))
    return folder


def sweep(folder):
    return subprocess.run([sys.executable, str(ROOT / "sweep.py"), "sweep.toml", "--quiet"],
                          cwd=folder, capture_output=True, text=True, timeout=600)


def arrays(path):
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = project(tmp_path_factory.mktemp("swept"))
    result = sweep(folder)
    assert result.returncode == 0, result.stderr
    return folder, result.stdout


def test_each_cell_keeps_its_embeddings_as_a_run_does(swept, tmp_path):
    folder, _ = swept
    cells = folder / "out/toy/ast"
    for name in CELLS:
        with open(cells / f"{name}.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        saved = arrays(cells / f"{name}.npz")
        assert sorted(saved["paths"]) == sorted(row["path"] for row in rows) and len(rows) == 8
        assert str(saved["tagger"]) == "ast" and len(saved["embeddings"]) == 8
        assert not (cells / f"{name}.npz.part").exists()
    plain = subprocess.run(
        [sys.executable, str(ROOT / "analyze_moisesdb.py"), "tree", "--checkpoint", "ast.pth",
         "--speech-model", "speech.pb", "--output", str(tmp_path / "plain.csv"),
         "--embeddings", str(tmp_path / "plain.npz"), "--quiet"],
        cwd=folder, capture_output=True, text=True, timeout=600)
    assert plain.returncode == 0, plain.stderr
    clean, run = arrays(cells / "clean.npz"), arrays(tmp_path / "plain.npz")
    assert sorted(clean) == sorted(run)
    for name, values in run.items():
        if values.dtype.kind == "f":
            np.testing.assert_allclose(clean[name], values, rtol=0, atol=1e-5)
        else:
            assert np.array_equal(clean[name], values), name


def test_summary_gives_fad_and_coverage_from_clean(swept):
    import torch
    from audio_metrics.data import AudioMetricsData
    from audio_metrics.metrics.fad import frechet_distance
    from prdc import compute_prdc

    folder, stdout = swept
    with open(folder / "out/summary.csv", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert list(records[0])[-2:] == ["fad", "coverage"]
    clean = arrays(folder / "out/toy/ast/clean.npz")["embeddings"].astype(np.float64)
    for record, name in zip(records, CELLS):
        cell = arrays(folder / f"out/toy/ast/{name}.npz")["embeddings"].astype(np.float64)
        x, y = AudioMetricsData(), AudioMetricsData()
        x.add(torch.from_numpy(clean))
        y.add(torch.from_numpy(cell))
        assert float(record["fad"]) == pytest.approx(frechet_distance(x, y), abs=1e-4)
        coverage = compute_prdc(real_features=clean, fake_features=cell, nearest_k=5)["coverage"]
        assert float(record["coverage"]) == pytest.approx(coverage, abs=1e-4)
    assert float(records[1]["fad"]) > 0.1 and float(records[0]["fad"]) == 0.0
    cells = json.loads((folder / "out/summary.json").read_text())["cells"]
    assert [cell["fad"] for cell in cells] == [float(record["fad"]) for record in records]
    assert "FAD from clean" in stdout and "coverage of clean" in stdout
    assert (folder / "out/distance.png").stat().st_size > 0


def test_a_cell_cut_short_is_resumed_with_its_embeddings(swept, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(swept[0], folder)
    cell = folder / "out/toy/ast/noise_snr=0"
    before = arrays(f"{cell}.npz")
    lines = Path(f"{cell}.csv").read_bytes().split(b"\r\n")
    Path(f"{cell}.csv").write_bytes(b"\r\n".join(lines[:4]) + b"\r\n")  # 3 rows kept
    result = sweep(folder)
    assert result.returncode == 0, result.stderr
    assert "ran 5 rows" in result.stderr
    after = arrays(f"{cell}.npz")
    assert list(after["paths"]) == list(before["paths"])
    np.testing.assert_allclose(after["embeddings"], before["embeddings"], rtol=0, atol=1e-6)


def test_embeddings_asked_for_cells_made_without_them_are_refused(tmp_path):
    folder = project(tmp_path, embeddings="false")
    assert sweep(folder).returncode == 0
    assert not [path for path in (folder / "out").rglob("*.npz")  # no embeddings, only the
                if not path.name.endswith(".scores.npz")]    # cells' kept scores
    (folder / "sweep.toml").write_text(CONFIG.format(embeddings="true"))
    refused = sweep(folder)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: cannot resume out/toy/ast/clean.csv with "
                                     "--embeddings out/toy/ast/clean.npz: 8 of its 8 rows "
                                     "have no embedding there")
    (folder / "sweep.toml").write_text(CONFIG.format(embeddings='"yes"'))
    bad = sweep(folder)
    assert bad.returncode == 2
    assert bad.stderr == "error: sweep.toml: options.embeddings must be true or false, not 'yes'\n"


def test_with_repeats_each_draw_is_measured_and_the_condition_gets_their_mean(tmp_path):
    """repeats and embeddings together: every draw keeps its embeddings, and the condition's
    FAD is the mean of each draw's FAD against clean (oracle: audio-metrics per draw)."""
    import torch
    from audio_metrics.data import AudioMetricsData
    from audio_metrics.metrics.fad import frechet_distance

    folder = project(tmp_path)
    config = (folder / "sweep.toml").read_text()
    config = config.replace('conditions = ["clean", "noise:snr=0", "lowpass:cutoff=1000"]',
                            'conditions = ["clean", "noise:snr=0"]\nrepeats = 2')
    (folder / "sweep.toml").write_text(config)
    result = sweep(folder)
    assert result.returncode == 0, result.stderr
    cells = folder / "out/toy/ast"
    clean = arrays(cells / "clean.npz")["embeddings"].astype(np.float64)

    def fad(name):
        x, y = AudioMetricsData(), AudioMetricsData()
        x.add(torch.from_numpy(clean))
        y.add(torch.from_numpy(arrays(cells / f"{name}.npz")["embeddings"].astype(np.float64)))
        return frechet_distance(x, y)

    draws = [fad("noise_snr=0"), fad("noise_snr=0@seed1")]
    assert draws[0] != pytest.approx(draws[1], abs=1e-6)
    with open(folder / "out/summary.csv", newline="") as handle:
        records = {record["condition"]: record for record in csv.DictReader(handle)}
    assert records["noise:snr=0"]["draws"] == "2"
    assert float(records["noise:snr=0"]["fad"]) == pytest.approx(sum(draws) / 2, abs=1e-4)
    assert float(records["clean"]["fad"]) == 0.0

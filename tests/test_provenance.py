"""The provenance sidecar, --embeddings and their behaviour on --resume, through the CLI."""

import csv
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stemeval.audio.decode import decode
from stemeval.audio.silence import trim_silence
from stemeval.common.errors import UserError
from stemeval.runfiles.embeddings import EmbeddingStore
from stemeval.runfiles.embeddings import load_arrays as read_embeddings
from stemeval.runfiles.sidecar import sha256
from stemeval.taggers import ast
from tests.helpers.ast_weights import random_model, save_original_checkpoint
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

ROOT = Path(__file__).resolve().parents[1]
RATE = 22050
STEMS = ("a/bass.wav", "a/drums.wav", "b/vocals.wav", "b/bass.wav")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("prov")
    for index, relative in enumerate(STEMS):
        path = base / "tree" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, concat(tone(1.0 + index / 2, RATE, 200 + 90 * index, seed=index),
                               silence(0.7, RATE)), RATE)
    weights = save_original_checkpoint(random_model(seed=7), base / "ast.pth")
    other = save_original_checkpoint(random_model(seed=8), base / "other.pth")
    music = write_constant_speech_graph(base / "music.pb", logit_for_score(3.0))
    speech = write_constant_speech_graph(base / "speech.pb", logit_for_score(90.0))
    return base, weights, other, music, speech


def analyze(base, *args):
    return subprocess.run([sys.executable, str(ROOT / "analyze_dsd100.py"), "tree", "--quiet",
                           "--workers", "0", *map(str, args)], cwd=base, capture_output=True,
                          text=True, timeout=600)


def test_sidecar_embeddings_and_unchanged_scores(setup):
    base, weights, _, music, _ = setup
    plain = analyze(base, "--checkpoint", weights, "--speech-model", music, "--details",
                    "--output", "plain.csv")
    assert plain.returncode == 0, plain.stderr
    result = analyze(base, "--checkpoint", weights, "--speech-model", music, "--details",
                     "--output", "emb.csv", "--embeddings", "emb.npz")
    assert result.returncode == 0, result.stderr
    assert (base / "emb.csv").read_bytes() == (base / "plain.csv").read_bytes()

    record = json.loads((base / "emb.csv.json").read_text())
    assert record["tagger"] == "ast"
    assert record["weights"] == {"path": str(weights), "sha256": sha256(weights)}
    assert record["speech_model"]["sha256"] == sha256(music)
    assert record["packages"]["torch"] == torch.__version__.split("+")[0]
    assert record["options"]["embeddings"] == "emb.npz" and record["device"] == "cpu"
    assert record["precision"] == "fp32" and record["stems"] == 4 == record["stems_this_run"]
    assert record["errors"] == 0 and record["stems_per_second"] > 0
    assert record["started"] <= record["finished"]

    saved = read_embeddings(base / "emb.npz")
    paths = sorted(f"tree/{relative}" for relative in STEMS)
    assert list(saved["paths"]) == paths and str(saved["tagger"]) == "ast"
    assert list(saved["labels"]) == ["bass", "drums", "bass", "vocals"]
    assert list(saved["groups"]) == ["a", "a", "b", "b"]  # the track folder
    assert saved["embeddings"].dtype == np.float32 and saved["embeddings"].shape == (4, 64)
    assert not (base / "emb.npz.part").exists()
    tagger = ast.load(str(weights))
    features = tagger.features(trim_silence(decode(str(base / paths[1])).pcm_mono))
    with torch.no_grad():
        expected = tagger.model.pooled(features[None])[0].numpy()
    np.testing.assert_allclose(saved["embeddings"][1], expected, atol=1e-5, rtol=0)


def test_speech_gated_stems_get_embeddings(setup):
    base, weights, _, _, speech = setup
    result = analyze(base, "--checkpoint", weights, "--speech-model", speech,
                     "--output", "gated.csv", "--embeddings", "gated.npz")
    assert result.returncode == 0, result.stderr
    with open(base / "gated.csv", newline="") as handle:
        assert {row["prediction"] for row in csv.DictReader(handle)} == {"speech"}
    assert len(read_embeddings(base / "gated.npz")["paths"]) == 4


def test_resume_refuses_other_weights_and_keeps_embeddings(setup):
    base, weights, other, music, _ = setup
    first = analyze(base, "--checkpoint", weights, "--speech-model", music,
                    "--output", "r.csv", "--embeddings", "r.npz")
    assert first.returncode == 0, first.stderr
    refused = analyze(base, "--checkpoint", other, "--speech-model", music,
                      "--output", "r.csv", "--resume")
    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: cannot resume r.csv: its sidecar r.csv.json names weights {weights} (sha256 "
        f"{sha256(weights)[:12]}), this run uses {other} (sha256 {sha256(other)[:12]})\n")
    lines = (base / "r.csv").read_bytes().split(b"\r\n")
    (base / "r.csv").write_bytes(b"\r\n".join(lines[:2]) + b"\r\n")  # as if killed after one row
    again = analyze(base, "--checkpoint", weights, "--speech-model", music,
                    "--output", "r.csv", "--embeddings", "r.npz", "--resume")
    assert again.returncode == 0, again.stderr
    assert json.loads((base / "r.csv.json").read_text())["stems_this_run"] == 3
    assert len(read_embeddings(base / "r.npz")["paths"]) == 4


def stem(path):
    return SimpleNamespace(path=path, label="bass", group="song")


def test_embedding_log_survives_a_kill(tmp_path):
    path = tmp_path / "e.npz"
    store = EmbeddingStore(path, "ast")
    for index in range(3):
        store.add(stem(f"p{index}"), np.full(4, index, np.float32))
    store._handle.close()
    log = Path(f"{path}.part")
    log.write_bytes(log.read_bytes()[:-7])  # a half-written last record
    store = EmbeddingStore(path, "ast", resume=True)
    store.add(stem("p2"), np.full(4, 5, np.float32))
    store.add(stem("p1"), np.full(4, 9, np.float32))  # analysed again
    assert store.close(complete=True) == 3 and not log.exists()
    saved = read_embeddings(path)
    assert list(saved["paths"]) == ["p0", "p1", "p2"] and list(saved["groups"]) == ["song"] * 3
    assert saved["embeddings"][:, 0].tolist() == [0, 9, 5]
    resumed = EmbeddingStore(path, "ast", resume=True)  # seeded from the npz
    assert resumed.close(complete=True) == 3
    with pytest.raises(UserError, match="they are of tagger ast, this run uses clap"):
        EmbeddingStore(path, "clap", resume=True)

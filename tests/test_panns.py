"""The PANNs CNN14 tagger against panns_inference, the authors' package, with the same weights.

panns_inference's Cnn14 (full size: CNN14 has no smaller variant) gets random weights and
batch-norm statistics measured on noise, is saved as the release is (``{'iteration',
'model'}``, in the pre-zip format of 2020), and read by our loader. Tolerance: 1e-4 on
scores and embeddings (measured: about 2e-6 and 1e-5; the front ends differ in float
rounding only: an FFT here, torchlibrosa's DFT convolutions there).

Importing panns_inference downloads AudioSet's label file unless
``~/panns_data/class_labels_indices.csv`` exists, so it is imported with HOME set to a
folder holding the project's copy of that file.
"""

import dataclasses
import importlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stemeval.audio.decode import Pcm
from stemeval.audio.resample import resample
from stemeval.common.errors import UserError
from stemeval.taggers import panns
from tests.helpers.servers import closed_port
from tests.helpers.tagger_cli import STEMS, analyze_tree, expected_row

PROJECT = Path(__file__).resolve().parent.parent
RATE = panns.SAMPLE_RATE
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """panns_inference's Cnn14 with random weights and measured batch-norm statistics."""
    home = tmp_path_factory.mktemp("home")
    (home / "panns_data").mkdir()
    shutil.copy(PROJECT / "AST" / "class_labels_indices.csv", home / "panns_data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("MPLCONFIGDIR", str(home / "matplotlib"))
        models = importlib.import_module("panns_inference.models")
    torch.manual_seed(0)
    model = models.Cnn14(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64,
                         fmin=50, fmax=14000, classes_num=527)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # the statistics of the one batch below
            torch.nn.init.normal_(module.weight, 1.0, 0.1)
            torch.nn.init.normal_(module.bias, 0.0, 0.1)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(noise(1.0, seed=5).to_float()).repeat(2, 1))
    return model.eval()


@pytest.fixture(scope="module")
def weights(reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("panns") / panns.SOURCE.file_name
    torch.save({"iteration": 0, "model": reference.state_dict()}, path,
               _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def tagger(weights):
    return panns.load(weights)


def noise(seconds, rate=RATE, seed=0):
    samples = np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 3000
    return Pcm(samples.astype(np.int16), 2, rate)


def test_scores_and_embedding_equal_panns_inference(reference, weights, tagger):
    pcms = [noise(1.3, seed=1), noise(1.0, seed=2)]
    out = tagger.forward([tagger.features(pcm) for pcm in pcms], "cpu")
    assert out.scores.shape == (2, 527) and out.embeddings.shape == (2, 2048)
    assert out.scores.std() > 0.05  # the comparison is not between saturated outputs
    for row, pcm in enumerate(pcms):
        with torch.no_grad():
            expected = reference(torch.from_numpy(pcm.to_float())[None])
        torch.testing.assert_close(out.scores[row], expected["clipwise_output"][0],
                                   atol=TOLERANCE, rtol=0)
        torch.testing.assert_close(out.embeddings[row], expected["embedding"][0],
                                   atol=TOLERANCE, rtol=0)
    assert tagger.weights == str(weights) and tagger.labels[0] == "Speech"


def test_resampler_keeps_a_tone():
    """44.1 kHz -> 32 kHz: a 1 kHz tone comes out as the same tone sampled at 32 kHz."""
    tone = lambda rate: np.sin(2 * np.pi * 1000 * np.arange(2 * rate) / rate).astype(np.float32)
    resampled = resample(tone(44100), 44100, panns.SAMPLE_RATE, kaiser_best=True)
    assert resampled.shape == (2 * RATE,)
    middle = slice(RATE // 2, 3 * RATE // 2)  # away from the edges' filter transients
    np.testing.assert_allclose(resampled[middle], tone(RATE)[middle], atol=1e-3)


def test_short_excerpts_are_padded_to_one_second(tagger):
    assert tagger.features(noise(0.1)).shape == (101, 64)


# --- strict loading: small files whose tensors are expanded zeros (cheap to save) -----------

def shapes_of(reference):
    return {name: tensor.shape for name, tensor in reference.state_dict().items()}


def fake(shapes, **replace):
    state = {name: torch.zeros(()).expand(shape) for name, shape in shapes.items()}
    state.update(replace)
    return {name: value for name, value in state.items() if value is not None}


def refusal(tmp_path, content):
    path = tmp_path / "weights.pth"
    torch.save(content, path)
    with pytest.raises(UserError) as error:
        panns.load(path)
    message = str(error.value)
    prefix = f"PANNs CNN14 weights {path} are not usable: "
    assert "\n" not in message and message.startswith(prefix)
    return message[len(prefix):]


def test_the_front_end_tensors_are_expected_and_a_fake_full_file_loads(tmp_path, reference):
    shapes = shapes_of(reference)
    assert set(panns.FRONT_END) < set(shapes)
    path = tmp_path / "zeros.pth"
    torch.save({"model": fake(shapes)}, path)
    assert panns.load(path).weights == str(path)


def test_missing_unexpected_and_misshapen_tensors_are_refused(tmp_path, reference):
    shapes = shapes_of(reference)
    assert refusal(tmp_path, {"model": fake(shapes, **{"fc1.bias": None})}) == \
        "missing fc1.bias"
    assert refusal(tmp_path, {"model": fake(shapes, extra=torch.zeros(1))}) == \
        "unexpected extra"
    assert refusal(tmp_path, {"model": fake(shapes, **{"logmel_extractor.melW": None})}) == \
        "missing logmel_extractor.melW"
    assert refusal(tmp_path, {"model": fake(shapes, **{"fc1.weight": torch.zeros(2048, 64)})}) \
        == "fc1.weight has shape (2048, 64), expected (2048, 2048)"
    ten = {"fc_audioset.weight": torch.zeros(10, 2048), "fc_audioset.bias": torch.zeros(10)}
    assert refusal(tmp_path, {"model": fake(shapes, **ten)}) == \
        "it scores 10 classes where AudioSet has 527"


def test_other_layouts_and_pickled_objects_are_refused(tmp_path, reference):
    import argparse

    shapes = shapes_of(reference)
    assert refusal(tmp_path, fake(shapes)) == "no 'model' entry holding the state dict"
    assert refusal(tmp_path, {"model": fake(shapes), "args": argparse.Namespace()}) == (
        "it holds pickled Python objects (argparse.Namespace), which are refused because "
        "loading them could run code")


def test_truncated_file_is_refused(tmp_path, weights):
    path = tmp_path / "cut.pth"
    path.write_bytes(weights.read_bytes()[:1000000])
    with pytest.raises(UserError, match="are not usable: not a complete PyTorch weights file, "
                                        "truncated or of another kind"):
        panns.load(path)


def test_missing_default_is_downloaded_checked_and_used(hub, server, reference, monkeypatch):
    body = io.BytesIO()
    torch.save({"iteration": 0, "model": fake(shapes_of(reference))}, body)
    for route, cut in (("/cut.pth", True), ("/whole.pth", False)):
        url = server.serve(route, body.getvalue(), cut=cut)
        monkeypatch.setattr(panns, "SOURCE", dataclasses.replace(panns.SOURCE, url=url))
        if cut:
            with pytest.raises(UserError, match="PANNs CNN14 weights download failed: the "
                                                "connection to 127.0.0.1:.* was cut after"):
                panns.load()
            assert not hub.exists() or not any(hub.iterdir())
    assert panns.load().weights == str(hub / "Cnn14_mAP=0.431.pth")
    assert (hub / "Cnn14_mAP=0.431.pth").read_bytes() == body.getvalue()


def test_offline_message(hub, monkeypatch):
    port = closed_port()
    url = f"http://127.0.0.1:{port}/Cnn14_mAP%3D0.431.pth"
    monkeypatch.setattr(panns, "SOURCE", dataclasses.replace(panns.SOURCE, url=url))
    with pytest.raises(UserError) as error:
        panns.load()
    assert str(error.value) == (
        f"PANNs CNN14 weights missing: Cnn14_mAP=0.431.pth is not in {hub} and cannot be "
        f"downloaded (no connection to 127.0.0.1:{port}: Connection refused); on a machine "
        f"that is online download {url} (about 327 MB) and copy it there, or pass "
        f"--checkpoint PATH")


def test_release_address():
    assert panns.SOURCE.url == "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth"


# --- through the command line -----------------------------------------------------------------

def test_rows_through_the_cli_equal_panns_inference(reference, weights, tmp_path):
    rows, excerpts = analyze_tree(tmp_path, "--tagger", "panns-cnn14", "--checkpoint", weights,
                                  stems=STEMS[:2])
    for row, excerpt in zip(rows, excerpts):
        with torch.no_grad():
            wave = resample(excerpt.to_float(), excerpt.rate, panns.SAMPLE_RATE, kaiser_best=True)
            scores = reference(wave[None])["clipwise_output"][0]
        prediction, proposed, score = expected_row(scores.numpy())
        assert (row["prediction"], row["proposed_label"]) == (prediction, proposed)
        assert abs(float(row["score"]) - score) < TOLERANCE

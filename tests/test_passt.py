"""The PaSST tagger against hear21passt, the authors' package, with the same random weights.

A small PaSST (width 128, 2 blocks; the release is 768 wide, 12 deep) is built by
hear21passt, saved as the release is (a bare state dict), and read by our loader.
Tolerance: 1e-5 on scores and embeddings (measured differences are about 1e-6).
"""

import argparse
import dataclasses

import numpy as np
import pytest
import torch

from stemeval.audio.decode import Pcm
from stemeval.audio.resample import resample
from stemeval.common.errors import UserError
from stemeval.taggers import passt
from tests.helpers.servers import closed_port
from tests.helpers.tagger_cli import analyze_tree, expected_row

RATE = passt.SAMPLE_RATE
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference():
    """hear21passt's mel front end and a small PaSST with random weights, in eval mode."""
    from hear21passt.models.passt import PaSST
    from hear21passt.models.preprocess import AugmentMelSTFT
    from hear21passt.wrapper import PasstBasicWrapper

    torch.manual_seed(0)
    net = PaSST(img_size=(128, 998), patch_size=16, stride=10, in_chans=1, num_classes=527,
                embed_dim=128, depth=2, num_heads=2, distilled=True)
    with torch.no_grad():  # move LayerNorms and biases off their initial values
        for parameter in net.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024,
                         freqm=48, timem=192, htk=False, fmin=0.0, fmax=None, norm=1,
                         fmin_aug_range=10, fmax_aug_range=2000)  # as hear21passt.base
    return PasstBasicWrapper(mel=mel, net=net, mode="all").eval()


@pytest.fixture(scope="module")
def weights(reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("passt") / passt.SOURCE.file_name
    torch.save(reference.net.state_dict(), path)
    return path


def noise(seconds, rate=RATE, seed=0):
    samples = np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 3000
    return Pcm(samples.astype(np.int16), 2, rate)


def reference_output(reference, wave):
    """hear21passt's sigmoid scores and embedding of one window ``wave``."""
    with torch.no_grad():
        out = reference(torch.as_tensor(wave)[None])
    return torch.sigmoid(out[:, :527]), out[:, 527:]


def test_scores_and_embedding_equal_hear21passt(reference, weights):
    tagger = passt.load(weights)
    pcm = noise(10)
    out = tagger.forward([tagger.features(pcm)], "cpu")
    scores, embedding = reference_output(reference, pcm.to_float())
    assert out.scores.shape == (1, 527) and out.embeddings.shape == (1, 128)
    assert out.scores.std() > 0.05  # the comparison is not between saturated outputs
    torch.testing.assert_close(out.scores, scores, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(out.embeddings, embedding, atol=TOLERANCE, rtol=0)
    assert tagger.weights == str(weights) and tagger.labels[0] == "Speech"


def test_long_excerpt_is_the_mean_of_10_s_windows_the_last_ending_at_the_end(reference,
                                                                            weights):
    tagger = passt.load(weights)
    long, short = noise(12, seed=1), noise(3, seed=2)
    out = tagger.forward([tagger.features(long), tagger.features(short)], "cpu")
    wave = long.to_float()
    windows = [reference_output(reference, wave[start * RATE:(start + 10) * RATE])
               for start in (0, 2)]
    torch.testing.assert_close(out.scores[0], torch.cat([s for s, _ in windows]).mean(0),
                               atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(out.embeddings[0], torch.cat([e for _, e in windows]).mean(0),
                               atol=TOLERANCE, rtol=0)
    # each window's own embedding is kept too (window_embeddings of --embeddings)
    assert [len(stem) for stem in out.windows] == [2, 1]
    torch.testing.assert_close(out.windows[0], torch.cat([e for _, e in windows]),
                               atol=TOLERANCE, rtol=0)
    scores, embedding = reference_output(reference, short.to_float())  # one shorter window
    torch.testing.assert_close(out.scores[1], scores[0], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(out.embeddings[1], embedding[0], atol=TOLERANCE, rtol=0)


def test_window_layout():
    ramp = torch.arange(25 * RATE, dtype=torch.float32)
    assert passt.windows(ramp)[:, 0].tolist() == [0, 10 * RATE, 15 * RATE]  # 10 s steps
    assert passt.windows(ramp[:20 * RATE])[:, 0].tolist() == [0, 10 * RATE]
    assert passt.windows(ramp[:10 * RATE]).shape == (1, 10 * RATE)
    assert passt.windows(ramp[:100]).shape == (1, passt.MIN_SAMPLES)  # zero-padded


def test_other_rates_are_resampled_to_32k(weights):
    tagger = passt.load(weights)
    assert tagger.features(noise(12, rate=44100)).shape == (2, 128, 1000)


# --- strict loading ---------------------------------------------------------------------------

def refusal(tmp_path, content, **save):
    path = tmp_path / "weights.pt"
    torch.save(content, path, **save)
    with pytest.raises(UserError) as error:
        passt.load(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"PaSST-S weights {path} are not usable: ")
    return message[len(f"PaSST-S weights {path} are not usable: "):]


@pytest.fixture
def state(weights):
    return torch.load(weights, weights_only=True)


def test_missing_unexpected_and_misshapen_tensors_are_refused(tmp_path, state):
    without = {k: v for k, v in state.items() if k != "head_dist.bias"}
    assert refusal(tmp_path, without) == "missing head_dist.bias"
    assert refusal(tmp_path, {**state, "extra": torch.zeros(1)}) == "unexpected extra"
    odd = {**state, "time_new_pos_embed": torch.zeros(1, 128, 1, 199)}
    assert refusal(tmp_path, odd) == ("time_new_pos_embed has shape (1, 128, 1, 199), "
                                      "expected (1, 128, 1, 99)")
    assert refusal(tmp_path, {"head.1.weight": torch.zeros(1)}) == \
        "not a PaSST state dict: no tensor 'cls_token'"


def test_other_class_counts_are_refused(tmp_path, state):
    ten = {**state, "head.1.weight": state["head.1.weight"][:10],
           "head.1.bias": state["head.1.bias"][:10]}
    assert refusal(tmp_path, ten) == "it scores 10 classes where AudioSet has 527"


def test_pickled_objects_are_refused_unread(tmp_path, state):
    assert refusal(tmp_path, {**state, "note": argparse.Namespace()}) == \
        ("it holds pickled Python objects (argparse.Namespace), which are refused because "
         "loading them could run code")


def test_truncated_and_foreign_files_are_refused(tmp_path, weights):
    path = tmp_path / "cut.pt"
    path.write_bytes(weights.read_bytes()[:100000])
    with pytest.raises(UserError, match="are not usable: not a complete PyTorch weights file, "
                                        "truncated or of another kind"):
        passt.load(path)
    with pytest.raises(UserError, match="are not usable: not a state dict of tensors"):
        refusal_path = tmp_path / "list.pt"
        torch.save([torch.zeros(1)], refusal_path)
        passt.load(refusal_path)
    with pytest.raises(UserError, match=f"^PaSST-S weights {tmp_path / 'none.pt'} do not exist$"):
        passt.load(tmp_path / "none.pt")


# --- the default file: torch hub's checkpoint folder, fetched when missing --------------------

def point_source_at(monkeypatch, url):
    monkeypatch.setattr(passt, "SOURCE", dataclasses.replace(passt.SOURCE, url=url))


def test_missing_default_is_downloaded_checked_and_used(hub, server, weights, monkeypatch):
    point_source_at(monkeypatch, server.serve("/passt.pt", weights.read_bytes()))
    tagger = passt.load()
    assert tagger.weights == str(hub / passt.SOURCE.file_name)
    assert (hub / passt.SOURCE.file_name).read_bytes() == weights.read_bytes()
    assert passt.load().weights == tagger.weights and len(server.hits) == 1


def test_cut_or_wrong_download_is_refused_and_removed(hub, server, weights, monkeypatch):
    point_source_at(monkeypatch, server.serve("/cut.pt", weights.read_bytes(), cut=True))
    with pytest.raises(UserError, match="PaSST-S weights download failed: the connection to "
                                        r"127\.0\.0\.1:\d+ was cut after"):
        passt.load()
    point_source_at(monkeypatch, server.serve("/wrong.pt", b"not weights"))
    with pytest.raises(UserError, match="is not usable PaSST-S weights "
                                        r"\(not a complete PyTorch weights file.*it was removed$"):
        passt.load()
    assert not hub.exists() or not any(hub.iterdir())


def test_offline_message(hub, monkeypatch):
    port = closed_port()
    point_source_at(monkeypatch, f"http://127.0.0.1:{port}/x.pt")
    with pytest.raises(UserError) as error:
        passt.load()
    assert str(error.value) == (
        f"PaSST-S weights missing: passt-s-f128-p16-s10-ap.476-swa.pt is not in {hub} and "
        f"cannot be downloaded (no connection to 127.0.0.1:{port}: Connection refused); on a "
        f"machine that is online download http://127.0.0.1:{port}/x.pt (about 345 MB) and "
        f"copy it there, or pass --checkpoint PATH")


def test_release_address():
    assert passt.SOURCE.url == ("https://github.com/kkoutini/PaSST/releases/download/"
                                "v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt")
    assert passt.SOURCE.url.endswith("/" + passt.SOURCE.file_name)


# --- through the command line -----------------------------------------------------------------

def test_rows_through_the_cli_equal_hear21passt(reference, weights, tmp_path):
    rows, excerpts = analyze_tree(tmp_path, "--tagger", "passt", "--checkpoint", weights)
    for row, excerpt in zip(rows, excerpts):
        wave = resample(excerpt.to_float(), excerpt.rate, RATE, kaiser_best=True)  # under 10 s: one window
        scores, _ = reference_output(reference, wave)
        prediction, proposed, score = expected_row(scores[0].numpy())
        assert (row["prediction"], row["proposed_label"]) == (prediction, proposed)
        assert abs(float(row["score"]) - score) < TOLERANCE

"""The CLAP zero-shot tagger against transformers' own ClapModel with the same random weights.

A tiny random CLAP is saved as a Hugging Face folder (tests/helpers/clap_models.py); the hub is an
empty cache with HF_HUB_OFFLINE=1, so nothing reaches the internet.
"""

import json

import numpy as np
import pytest
import torch

from stemeval.audio.decode import Pcm
from stemeval.common.errors import UserError
from stemeval.taggers import clap
from tests.helpers.clap_models import save_tiny_clap

CATEGORIES = ["bass", "drums", "other_keys"]
PROMPTS = ["the sound of bass", "the sound of drums", "the sound of other keys"]


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_clap(tmp_path_factory.mktemp("clap"))


@pytest.fixture(scope="module")
def fused_folder(tmp_path_factory):
    return save_tiny_clap(tmp_path_factory.mktemp("clap-fused"), fusion=True, seed=1)


def pcm(seconds, rate=48000, seed=0):
    samples = np.random.default_rng(seed).integers(-8000, 8000, int(seconds * rate))
    return Pcm(samples.astype(np.int16), 2, rate)


def reference(folder, waves):
    """transformers' ClapModel logits_per_audio and audio_embeds, one row per 48 kHz wave."""
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(folder).eval()
    processor = ClapProcessor.from_pretrained(folder)
    inputs = processor(text=PROMPTS, audio=[np.asarray(wave) for wave in waves],
                       sampling_rate=48000, return_tensors="pt", padding=True)
    inputs["is_longer"] = torch.zeros(len(waves), 1, dtype=torch.bool)
    with torch.no_grad():
        output = model(**inputs)
    return output.logits_per_audio, output.audio_embeds


def run(tagger, excerpts):
    return tagger.forward([tagger.features(excerpt) for excerpt in excerpts], "cpu")


@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
def test_scores_equal_clap_model_logits(folder, fused_folder, fused):
    model = fused_folder if fused else folder
    tagger = clap.load(str(model), CATEGORIES)
    assert tagger.labels is None and tagger.categories == CATEGORIES
    assert tagger.sample_rate == 48000 and tagger.weights == str(model)
    excerpts = [pcm(0.6, seed=1), pcm(1.0, seed=2)]  # repeat-padded, and exactly one window
    output = run(tagger, excerpts)
    logits, embeds = reference(model, [excerpt.to_float() for excerpt in excerpts])
    torch.testing.assert_close(output.scores, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.embeddings, embeds, atol=1e-6, rtol=1e-5)
    assert output.scores.dtype == output.embeddings.dtype == torch.float32


def test_long_excerpt_is_the_mean_over_evenly_spread_windows(folder):
    import torchaudio

    tagger = clap.load(str(folder), CATEGORIES)
    excerpt = pcm(2.5, rate=44100, seed=3)
    wave = torchaudio.functional.resample(torch.from_numpy(excerpt.to_float()), 44100, 48000)
    assert len(wave) == 120000
    windows = [wave[0:48000], wave[36000:84000], wave[72000:120000]]  # ceil(2.5) windows
    logits, embeds = reference(folder, windows)
    output = run(tagger, [excerpt, pcm(0.5, seed=4)])
    torch.testing.assert_close(output.scores[0], logits.mean(dim=0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.embeddings[0], embeds.mean(dim=0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(output.windows[0], embeds, atol=1e-6, rtol=1e-5)  # each kept
    alone = run(tagger, [excerpt])  # a stem's row does not depend on its batch
    torch.testing.assert_close(alone.scores[0], output.scores[0], atol=1e-6, rtol=1e-6)


def test_the_model_is_given_the_documented_prompts(folder, monkeypatch):
    from transformers import ClapProcessor

    tokenizer_class = type(ClapProcessor.from_pretrained(folder).tokenizer)
    seen = []
    original = tokenizer_class.__call__

    def spy(self, text=None, *args, **kwargs):
        seen.append(list(text))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(tokenizer_class, "__call__", spy)
    tagger = clap.load(str(folder), CATEGORIES)
    assert seen == [PROMPTS]
    assert tagger.prompts == PROMPTS
    assert [clap.prompt(name) for name in ("bowed_strings", "other_plucked", " wind ")] == [
        "the sound of bowed strings", "the sound of other plucked", "the sound of wind"]
    assert clap.PROMPT == "the sound of {category}"


def test_hub_model_from_the_cache(folder, tmp_path):
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-clap"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    tagger = clap.load("hf:someone/tiny-clap", CATEGORIES)
    assert tagger.weights == "someone/tiny-clap"
    direct = clap.load(str(folder), CATEGORIES)
    torch.testing.assert_close(tagger.text_embeds, direct.text_embeds)


def message(checkpoint, categories=CATEGORIES):
    with pytest.raises(UserError) as error:
        clap.load(checkpoint, categories)
    text = str(error.value)
    assert "\n" not in text
    return text


def test_offline_and_missing_models_are_one_line(tmp_path):
    assert message(None) == (
        f"CLAP model laion/larger_clap_music is not in the Hugging Face cache "
        f"{tmp_path / 'hub'} and cannot be downloaded (HF_HUB_OFFLINE is set); on a machine "
        f"that is online run \"hf download laion/larger_clap_music\" and copy the cache, or "
        f"pass --checkpoint a local CLAP model folder")
    assert message("hf:someone/absent").startswith("CLAP model someone/absent is not in")
    assert message("hf:") == ("--checkpoint hf: needs a Hugging Face model id, "
                              "e.g. hf:laion/larger_clap_music")
    assert message(str(tmp_path / "nowhere")) == (
        f"CLAP model {tmp_path / 'nowhere'}: no such folder (give a Hugging Face CLAP model "
        f"folder or hf:<repo id>)")
    assert message(str(tmp_path)) == (
        f"CLAP model {tmp_path} has no readable config.json (No such file or directory)")


def test_wrong_models_are_refused(folder, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    other = tmp_path / "ast"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "audio-spectrogram-transformer"}))
    assert message(str(other)) == (f"CLAP model {other} is not a CLAP model: its config.json "
                                   f"says model_type 'audio-spectrogram-transformer'")
    cut = tmp_path / "cut"
    shutil.copytree(folder, cut)
    weights = load_file(cut / "model.safetensors")
    name = sorted(weights)[0]
    del weights[name]
    save_file(weights, cut / "model.safetensors", metadata={"format": "pt"})
    assert message(str(cut)) == (f"CLAP model {cut} is not usable: 1 weight(s) missing, "
                                 f"e.g. {name}")
    assert message(str(folder), []) == (
        "the clap tagger scores the dataset's categories, and none were given")


def test_command_line_rows_embeddings_and_probe(folder, tmp_path):
    """analyze_moisesdb.py --tagger clap on generated stems: each row's proposed label is the
    best prompt score of its saved embedding; probe.py reads both files of the run."""
    import csv

    from stemeval.datasets import category_map
    from tests.helpers.cli import run_script
    from tests.helpers.signals import concat, silence, tone, write_wav
    from tests.helpers.tf_graphs import logit_for_score, write_constant_speech_graph

    for song in range(5):
        for number, label in enumerate(["bass", "drums"]):
            (tmp_path / "tree" / f"song{song}" / label).mkdir(parents=True)
            write_wav(tmp_path / "tree" / f"song{song}" / label / f"{label}.wav",
                      concat(tone(1.5, 22050, 80 + 400 * number + 20 * song, seed=song),
                             silence(0.7, 22050), tone(1.0, 22050, 300, seed=song)), 22050)
    graph = write_constant_speech_graph(tmp_path / "speech.pb", logit_for_score(3.0))
    done = run_script("analyze_moisesdb.py", "tree", "--tagger", "clap", "--checkpoint", folder,
                      "--speech-model", graph, "--output", "out.csv", "--embeddings", "emb.npz",
                      "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    tagger = clap.load(str(folder), list(category_map("moisesdb").categories))
    with np.load(tmp_path / "emb.npz") as saved:
        assert sorted(saved["paths"]) == sorted(rows) and len(rows) == 10
        assert str(saved["layer"]) == clap.ClapTagger.embedding
        counts = saved["window_counts"]  # the tiny model's windows are 1 s: 3 per stem
        assert counts.tolist() == [3] * 10 and len(saved["window_embeddings"]) == 30
        means = saved["window_embeddings"].reshape(10, 3, -1).mean(axis=1)
        np.testing.assert_allclose(means, saved["embeddings"], atol=1e-6)
        assert sorted(set(saved["groups"])) == [f"song{song}" for song in range(5)]
        scores = tagger.logit_scale * torch.from_numpy(saved["embeddings"]) @ tagger.text_embeds.T
        for path, row in zip(saved["paths"], scores.argmax(dim=1)):
            best = tagger.categories[int(row)]
            assert rows[path]["prediction"] == rows[path]["proposed_label"] == best
    done = run_script("probe.py", "emb.npz", "--zero-shot", "out.csv", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert "Confusion matrix, zero-shot, all test stems" in done.stdout

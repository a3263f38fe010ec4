"""The speech score from one in-memory decode equals the published MonoLoader +
TensorflowPredictVGGish run on the file, on both backends, in every branch of the gate."""

import numpy as np
import pytest

from stemeval.audio.decode import decode
from stemeval.audio.resample import resample_16k
from stemeval.speech.gate import (
    CLOSE_CALL,
    GATE_SCORE,
    SPEECH_LABEL_MIN_SCORE,
    ComputedActivations,
    SpeechEvidence,
    UnitsOnlySpeechModel,
    speech_model_factory,
    speech_score,
)
from tests.helpers.published import speech_score as published_score
from tests.helpers.signals import concat, silence, tone, write_wav
from tests.helpers.tf_graphs import SPEECH_COLUMN, logit_for_score, write_linear_graph


def linear_graph(path, target_score, seed=0, scale=1e-3):
    """Small random weights around a bias that puts the speech score near ``target_score``."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((96 * 64, 8)).astype(np.float32) * scale
    bias = np.zeros(8, np.float32)
    bias[SPEECH_COLUMN] = logit_for_score(target_score)
    return write_linear_graph(path, weight, bias)


STEMS = {
    "mono_44k": (lambda: concat(tone(2.0, 44100), silence(0.5, 44100), tone(1.5, 44100, 900)), 44100, "PCM_16"),
    "stereo_48k_24bit": (lambda: tone(3.3, 48000, 300, channels=2), 48000, "PCM_24"),
    "mono_16k": (lambda: tone(2.5, 16000, 1000, level=0.9), 16000, "PCM_16"),
    "shorter_than_a_patch": (lambda: tone(0.5, 22050), 22050, "PCM_16"),
}
RANGES = {"gated": 85.0, "between": 30.0, "speech_label_off": 2.0}


@pytest.mark.parametrize("backend", ["essentia", "torch"])
@pytest.mark.parametrize("target", sorted(RANGES))
def test_score_equals_published(tmp_path, backend, target):
    graph = linear_graph(tmp_path / "speech.pb", RANGES[target])
    model = speech_model_factory(graph, backend)()
    for name, (make, rate, subtype) in STEMS.items():
        path = str(write_wav(tmp_path / f"{name}.wav", make(), rate, subtype))
        stem = decode(path)
        score = model.evidence(resample_16k(stem.essentia_mono, stem.rate)).score()
        expected = published_score(path, graph)
        assert abs(score - expected) < 1e-4, name
        if name == "shorter_than_a_patch":
            assert score == 0.0
        elif target == "gated":
            assert score >= GATE_SCORE
        elif target == "between":
            assert SPEECH_LABEL_MIN_SCORE <= score < GATE_SCORE
        else:
            assert score < SPEECH_LABEL_MIN_SCORE


def test_evidence_answers_equal_the_full_score():
    """Stopping early never changes an answer: checked on many random activation sets."""
    rng = np.random.default_rng(7)
    for trial in range(400):
        total = int(rng.integers(1, 300))
        level = rng.uniform(0, 1)
        activations = np.clip(rng.normal(level, rng.uniform(0, 0.5), (total, 8)), 0, 1)
        activations = activations.astype(np.float32)
        full = speech_score(activations)
        for threshold in (GATE_SCORE, SPEECH_LABEL_MIN_SCORE, full, full + 1e-4):
            evidence = SpeechEvidence(ComputedActivations(activations))
            assert evidence.at_least(threshold) == (full >= threshold), (trial, threshold)
            assert evidence.score() == full


def test_evidence_stops_early_when_the_answer_is_clear():
    class Counted(ComputedActivations):
        asked = []

        def compute(self, start, stop):
            self.asked.append(stop - start)
            return super().compute(start, stop)

    source = Counted(np.full((1000, 8), 0.02, np.float32))
    assert not SpeechEvidence(source).at_least(GATE_SCORE)
    # after k patches at 0.02 the score is at most 100 - 0.098 k: it takes 511 to settle
    assert 511 <= sum(source.asked) < 511 + SpeechEvidence.MIN_BATCH
    assert max(source.asked) == SpeechEvidence.MAX_BATCH


def test_identical_patches_run_once_and_count_by_weight(tmp_path):
    """A stem that is mostly digital silence: the silent patch runs once, first."""
    graph = linear_graph(tmp_path / "speech.pb", 20.0)
    audio = np.zeros(16000 * 60, np.float32)
    audio[16000 * 50:] = tone(10, 16000, 300)[:, 0]
    model = speech_model_factory(graph, "torch")()
    evidence = model.evidence(audio)
    source = evidence._source
    assert source.weights[0] > 40 and source.units < source.total
    assert abs(evidence.score() - published_score_of_audio(audio, graph)) < 1e-4


def published_score_of_audio(audio, graph):
    from stemeval.common.essentia_setup import essentia_standard

    activations = essentia_standard().TensorflowPredictVGGish(
        graphFilename=str(graph), input="model/Placeholder", output="model/Sigmoid")(audio)
    return speech_score(np.asarray(activations))


def test_unknown_op_falls_back_to_essentia_with_one_warning(tmp_path, capfd):
    """Erf is a TensorFlow op the PyTorch runner does not know: Essentia runs the graph."""
    from tests.helpers.tf_graphs import write_graph_with_op

    graph = write_graph_with_op(tmp_path / "erf.pb", "Erf")
    factory = speech_model_factory(graph, "torch")
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "Erf" in warnings[0] and "Essentia" in warnings[0]
    audio = tone(3.0, 16000)[:, 0].astype(np.float32)
    assert factory().evidence(audio).score() == pytest.approx(50.0, abs=1e-4)  # sigmoid(erf(0))


@pytest.mark.parametrize("target", [GATE_SCORE, 30.0])
def test_a_close_call_on_pytorchs_patches_is_settled_on_essentias(tmp_path, target):
    """As on a GPU, the main process computes the input patches with PyTorch; a score that
    lands within CLOSE_CALL of the threshold asked about is computed again on Essentia's
    patches (here the graph puts it within 0.1 of 50, the gate's threshold), any other is
    kept."""
    from stemeval.speech.graph import PatchActivations

    graph = linear_graph(tmp_path / "speech.pb", target, scale=1e-5)
    audio = np.random.default_rng(3).normal(0, 0.2, 16000 * 20).astype(np.float32)
    models = speech_model_factory(graph, "torch")
    evidence = models.attach(UnitsOnlySpeechModel().evidence(audio))
    models.complete([evidence])
    on_pytorchs = evidence.score()
    essentias = PatchActivations(models.runner, audio)
    on_essentias = speech_score(essentias.expand(essentias.compute(0, essentias.units)))
    assert evidence._source.approximate
    assert abs(on_pytorchs - on_essentias) < 1e-3
    assert abs(on_essentias - published_score_of_audio(audio, graph)) < 1e-4
    close = abs(on_pytorchs - GATE_SCORE) < CLOSE_CALL
    assert close == (target == GATE_SCORE)
    assert evidence.at_least(GATE_SCORE) == ((on_essentias if close else on_pytorchs) >= GATE_SCORE)
    assert evidence.score() == (on_essentias if close else on_pytorchs)
    assert evidence._source.approximate != close

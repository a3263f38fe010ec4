"""The speech gate: Essentia's VGGish genre classifier, whose class 7 is speech.

A stem scoring >= 50 is reported as speech without running the AST; a score < 8 keeps the
AST from choosing the ``Speech`` label.
"""

import sys

import numpy as np

from stemeval.essentia_setup import essentia_standard

INPUT_NODE = "model/Placeholder"
OUTPUT_NODE = "model/Sigmoid"
SPEECH_CLASS = 7  # cla, dan, hip, jaz, pop, rhy, roc, spe
NUM_CLASSES = 8
GATE_SCORE = 50.0
SPEECH_LABEL_MIN_SCORE = 8.0


class EssentiaSpeechModel:
    """The graph run by Essentia's TensorFlow, as published (``TensorflowPredictVGGish``)."""

    def __init__(self, graph_path):
        self._predict = essentia_standard().TensorflowPredictVGGish(
            graphFilename=str(graph_path), input=INPUT_NODE, output=OUTPUT_NODE)

    def activations(self, audio_16k):
        """``[patches, 8]`` class activations of 16 kHz mono audio (none if under one patch)."""
        result = self._predict(np.ascontiguousarray(audio_16k, dtype=np.float32))
        return np.asarray(result, dtype=np.float32).reshape(-1, NUM_CLASSES)


def speech_score(activations):
    """100 x the mean speech activation over patches; 0 when there is no patch."""
    if len(activations) == 0:
        return 0.0
    return float(100 * np.mean(activations, axis=0)[SPEECH_CLASS])


def is_speech(score):
    return score >= GATE_SCORE


class TorchSpeechModel:
    """The same graph executed by PyTorch on Essentia's VGGish input patches."""

    def __init__(self, runner, device):
        self._runner = runner
        self._device = device

    def activations(self, audio_16k):
        from stemeval.speech_graph import speech_activations

        return speech_activations(self._runner, audio_16k, device=self._device)


def speech_model_factory(graph_path, backend="torch", device="cpu"):
    """A function that builds a speech model; each thread calls it once for its own model.

    The PyTorch runner is shared (it is stateless); a graph with an op it does not know falls
    back to Essentia's TensorFlow with one warning.
    """
    if backend == "torch":
        from stemeval.speech_graph import GraphRunner, UnsupportedGraph

        try:
            runner = GraphRunner.from_pb(graph_path).to(device).eval()
        except UnsupportedGraph as error:
            print(f"warning: {error}; running the speech graph in Essentia's TensorFlow instead",
                  file=sys.stderr)
        else:
            return lambda: TorchSpeechModel(runner, device)
    return lambda: EssentiaSpeechModel(graph_path)

"""The speech gate: Essentia's VGGish genre classifier, whose class 7 is speech.

A stem scoring >= 50 is reported as speech without running the AST; a score < 8 keeps the
AST from choosing the ``Speech`` label. The score is 100 x the mean over 0.96 s patches of
the speech activation (0 when the stem is shorter than one patch).
"""

import math
import sys
from pathlib import Path

import numpy as np

from stemeval.errors import one_line

from stemeval.essentia_setup import essentia_standard

INPUT_NODE = "model/Placeholder"
OUTPUT_NODE = "model/Sigmoid"
SPEECH_CLASS = 7  # cla, dan, hip, jaz, pop, rhy, roc, spe
NUM_CLASSES = 8
GATE_SCORE = 50.0
SPEECH_LABEL_MIN_SCORE = 8.0
# A decision taken before every patch is seen must clear its threshold by this much (in
# score points): far more than float32 rounding can move the mean of the activations.
DECISION_MARGIN = 1e-3
CHECK_SAMPLES = 16000  # one second at 16 kHz: one patch


def speech_score(activations):
    """100 x the mean speech activation over patches; 0 when there is no patch."""
    if len(activations) == 0:
        return 0.0
    return float(100 * np.mean(activations, axis=0)[SPEECH_CLASS])


class SpeechEvidence:
    """A stem's speech activations, computed only as far as a question needs.

    Each activation lies in [0, 1], so after some of the n patches the score lies between
    ``100 * seen / n`` and ``100 * (seen + unseen) / n``: often enough to answer "is the
    score >= 50?" long before the last patch. The answers are those of the full score.

    ``source`` gives the activations as *units*, each standing for ``source.weights[i]``
    identical patches: ``source.compute(start, stop)`` runs units, ``source.expand(units)``
    lays all of them out per patch, and ``source.total`` is the number of patches.
    """

    MIN_BATCH, MAX_BATCH = 8, 64

    def __init__(self, source):
        self._source = source
        self._seen = []
        self._units = 0
        self._count = 0
        self._sum = 0.0

    def _bounds(self):
        total = self._source.total
        unseen = total - self._count
        return 100 * self._sum / total, 100 * (self._sum + unseen) / total

    def _advance(self, wanted):
        weights = self._source.weights
        # enough units to cover ``wanted`` patches, within the batch limits
        covered = np.searchsorted(np.cumsum(weights[self._units:]), wanted) + 1
        stop = min(len(weights), self._units + max(self.MIN_BATCH, min(covered, self.MAX_BATCH)))
        batch = self._source.compute(self._units, stop)
        self._seen.append(batch)
        self._count += int(weights[self._units:stop].sum())
        self._sum += float(np.dot(weights[self._units:stop], batch[:, SPEECH_CLASS].astype(np.float64)))
        self._units = stop

    def at_least(self, threshold):
        """Whether the speech score is >= ``threshold``, computing no more than needed."""
        while self._count < self._source.total:
            low, high = self._bounds()
            if low >= threshold + DECISION_MARGIN:
                return True
            if high < threshold - DECISION_MARGIN:
                return False
            # the fewest patches that could settle it: all 0 (to pull the upper bound below
            # the threshold) or all 1 (to push the lower bound above it)
            fewest = min(high - threshold + DECISION_MARGIN, threshold + DECISION_MARGIN - low)
            self._advance(math.ceil(fewest * self._source.total / 100))
        return self.score() >= threshold

    def score(self):
        """The exact speech score (computes every remaining unit)."""
        while self._count < self._source.total:
            self._advance(self.MAX_BATCH)
        if not self._seen:
            return 0.0
        return speech_score(self._source.expand(np.concatenate(self._seen)))


class ComputedActivations:
    """All activations already at hand, one unit per patch."""

    def __init__(self, activations):
        self._activations = activations
        self.total = len(activations)
        self.weights = np.ones(self.total, np.int64)

    def compute(self, start, stop):
        return self._activations[start:stop]

    def expand(self, units):
        return units


class EssentiaSpeechModel:
    """The graph run by Essentia's TensorFlow, as published (``TensorflowPredictVGGish``)."""

    def __init__(self, graph_path):
        self._predict = essentia_standard().TensorflowPredictVGGish(
            graphFilename=str(graph_path), input=INPUT_NODE, output=OUTPUT_NODE)

    def evidence(self, audio_16k):
        """The speech evidence of 16 kHz mono audio, all patches computed at once."""
        result = self._predict(np.ascontiguousarray(audio_16k, dtype=np.float32))
        activations = np.asarray(result, dtype=np.float32).reshape(-1, NUM_CLASSES)
        return SpeechEvidence(ComputedActivations(activations))


class TorchSpeechModel:
    """The same graph executed by PyTorch on Essentia's VGGish input patches."""

    def __init__(self, runner):
        self._runner = runner

    def evidence(self, audio_16k):
        """The speech evidence of 16 kHz mono audio, computed lazily batch by batch."""
        from stemeval.speech_graph import PatchActivations

        return SpeechEvidence(PatchActivations(self._runner, audio_16k))


def speech_model_factory(graph_path, backend="torch", device="cpu"):
    """A function that builds a speech model; each thread calls it once for its own model.

    The PyTorch runner is shared (it is stateless) and moved to ``device`` once, here; a graph with an op it does not know falls
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
            return lambda: TorchSpeechModel(runner)
    return lambda: EssentiaSpeechModel(graph_path)


_ESSENTIA_PREFIXES = ("Error while configuring TensorflowPredictVGGish: ", "TensorflowPredict: ")


class SpeechModelError(ValueError):
    """The file is not a speech model the gate can run; the message says why."""


def check_speech_graph(path):
    """Raise SpeechModelError unless Essentia runs ``path`` and gives (1, 8) for one patch.

    Anything but a regular file is refused first: Essentia's TensorflowPredictVGGish
    crashes the process (a segmentation fault) when given a folder."""
    if not Path(path).is_file():
        raise SpeechModelError("it is a folder, not a .pb graph file" if Path(path).is_dir()
                               else "it is not a regular file (a .pb graph file)")
    predict = essentia_standard().TensorflowPredictVGGish
    try:
        model = predict(graphFilename=str(path), input=INPUT_NODE, output=OUTPUT_NODE)
        output = model(np.zeros(CHECK_SAMPLES, dtype=np.float32))
    except RuntimeError as error:
        raise SpeechModelError(f"Essentia cannot run it: {_essentia_reason(error)}") from None
    shape = tuple(np.shape(output))
    if shape != (1, NUM_CLASSES):
        raise SpeechModelError(f"it gives an output of shape {shape} for one patch, "
                               f"expected (1, {NUM_CLASSES})")
    return Path(path)


def _essentia_reason(error):
    text = one_line(error)
    for prefix in _ESSENTIA_PREFIXES:
        text = text.removeprefix(prefix)
    return text

"""The speech gate: Essentia's VGGish genre classifier, whose class 7 is speech.

A stem scoring >= 50 is reported as speech without running the AST; a score < 8 keeps the
AST from choosing the ``Speech`` label. The score is 100 x the mean over 0.96 s patches of
the speech activation (0 when the stem is shorter than one patch).
"""

import math
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from stemeval.common.errors import UserError, one_line
from stemeval.common.essentia_setup import essentia_standard
from stemeval.speech.vggish_input import DevicePatches, patch_bands

# Imported inside the functions that use them, so that what needs none of them starts without them:
# torch and stemeval.speech.graph, stemeval.speech.vggish_embeddings.

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
# A score computed on PyTorch's input patches (on a GPU) this close to a threshold (in score
# points) is computed again on Essentia's patches before the answer is given; see CLOSE_CALL
# in docs/tasks/evaluate.md (step 3) for how far apart the two were found.
CLOSE_CALL = 0.5


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
    lays all of them out per patch, ``source.total`` is the number of patches, and
    ``source.approximate`` says whether they came from PyTorch's input patches.
    """

    MIN_BATCH, MAX_BATCH = 8, 64

    def __init__(self, source):
        self._source = source
        self.patch_embeddings = None  # per patch, when the VGGish embeddings are kept
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
        self._take(self._source.compute(self._units, stop))

    def _take(self, activations):
        """Count the activations of the next ``len(activations)`` units."""
        stop = self._units + len(activations)
        weights = self._source.weights[self._units:stop]
        self._seen.append(activations)
        self._count += int(weights.sum())
        self._sum += float(np.dot(weights, activations[:, SPEECH_CLASS].astype(np.float64)))
        self._units = stop

    def attach(self, runner):
        """Run what is still unseen on ``runner``, this process's (the evidence was begun in
        another process); returns self."""
        if hasattr(self._source, "attach"):
            self._source.attach(runner)
        return self

    def unseen_patches(self, patches=None):
        """The input patches of the units not yet run, [n, 96, 64] (a ``PatchActivations``
        source): Essentia's, or with ``patches`` (a ``vggish_input.DevicePatches``) PyTorch's
        on its device, for running them there with other stems' (``complete``)."""
        stop = len(self._source.weights)
        if patches is None:
            return self._source.unit_patches(self._units, stop)
        return self._source.device_patches(self._units, stop, patches)

    def complete(self, activations, embeddings=None):
        """Take the activations of every unit not yet run, computed elsewhere; with
        ``embeddings`` (the VGGish embedding of every unit, none run before), also keep
        those, laid out per patch, as ``patch_embeddings`` [patches, 128]."""
        if len(activations) != len(self._source.weights) - self._units:
            raise ValueError(f"{len(activations)} activations for "
                             f"{len(self._source.weights) - self._units} unseen units")
        if embeddings is not None:
            if self._units:
                raise ValueError("embeddings are taken with every unit's activations")
            self.patch_embeddings = self._source.expand(np.asarray(embeddings, np.float32))
        if len(activations):
            self._take(np.asarray(activations, dtype=np.float32))

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
        score = self.score()
        if self._source.approximate and abs(score - threshold) < CLOSE_CALL:
            self._settle_on_essentia_patches()
            score = self.score()
        return score >= threshold

    def _settle_on_essentia_patches(self):
        """Run every unit again on Essentia's own input patches (a close call was found on
        PyTorch's; ``CLOSE_CALL``)."""
        activations = self._source.compute(0, len(self._source.weights))
        self._source.approximate = False
        self._seen, self._units, self._count, self._sum = [], 0, 0, 0.0
        self._take(activations)

    def score(self):
        """The exact speech score (computes every remaining unit)."""
        while self._count < self._source.total:
            self._advance(self.MAX_BATCH)
        if not self._seen:
            return 0.0
        return speech_score(self._source.expand(np.concatenate(self._seen)))


class ComputedActivations:
    """All activations already at hand, one unit per patch."""

    approximate = False

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

    def __init__(self, runner, embeddings=False):
        self._runner = runner
        self._embeddings = embeddings

    def evidence(self, audio_16k):
        """The speech evidence of 16 kHz mono audio, computed lazily batch by batch; with
        the VGGish embeddings kept, every patch at once (an ``EmbeddingRunner``)."""
        from stemeval.speech.graph import PatchActivations, run_batches

        evidence = SpeechEvidence(PatchActivations(self._runner, audio_16k))
        patches = evidence.unseen_patches() if self._embeddings else ()
        if len(patches):
            evidence.complete(*run_batches(self._runner.embed, patches,
                                           SpeechEvidence.MAX_BATCH, self._runner.device))
        return evidence


class UnitsOnlySpeechModel:
    """For a preparing process while the graph runs on a GPU in the main process: each
    stem's distinct patches are found here, and the main process computes their input
    patches on the GPU and runs the network on those of many stems at once
    (``SpeechModels.complete``)."""

    def evidence(self, audio_16k):
        from stemeval.speech.graph import PatchActivations

        return SpeechEvidence(PatchActivations(None, audio_16k))


class SpeechModels:
    """The speech gate's model, built where it runs, from a graph file read once.

    Calling it gives this process's model (PyTorch's runner, moved once to ``device``, or
    Essentia's TensorFlow); a graph with an op the PyTorch runner does not know falls back to
    Essentia's TensorFlow with one warning. ``for_preparing()`` is what the preparing step
    (worker processes) uses: on a CPU the whole lazy gate; when the graph runs on a GPU only
    the input patches, the main process running the network on many stems' patches at once
    with ``complete``. A lazy evidence begun in a worker goes on in the main process after
    ``attach``.
    """

    PATCH_BATCH = 2048  # patches per forward pass on a GPU

    def __init__(self, graph_path, backend="torch", device="cpu", embeddings=False):
        import torch

        self.graph_path = str(graph_path)
        self.backend = backend
        self.device = torch.device(device)
        self.embeddings = embeddings  # keep every patch's VGGish embedding
        self._runner = None
        self._essentia = None
        self._device_patches = None  # vggish_input.DevicePatches, built when first used
        if embeddings:
            check_embeddings_backend(backend)
        if backend == "torch":
            from stemeval.speech.graph import UnsupportedGraph

            try:
                self._runner = self._build_runner()
            except UnsupportedGraph as error:
                print(f"warning: {error}; running the speech graph in Essentia's TensorFlow "
                      f"instead", file=sys.stderr)
                self.backend = "essentia"
        if self.backend == "essentia" and not has_essentia_tensorflow():
            raise UserError("the speech graph must run in Essentia's TensorFlow, which is not "
                            "installed (pip install essentia-tensorflow, or --speech-backend "
                            "torch)")

    def __getstate__(self):
        """Sent to a fresh process (not forked) without the built models; it builds its own."""
        return {**self.__dict__, "_runner": None, "_essentia": None, "_device_patches": None}

    def _build_runner(self):
        """The PyTorch runner on ``device``, from the graph the file's check read in this
        process if it is at hand, else from the file: with embeddings the VGGish-split one,
        else the plain runner (the check's own)."""
        from stemeval.speech.graph import GraphRunner, read_graph
        from stemeval.speech.vggish_embeddings import EmbeddingRunner

        checked = _checked_graphs.pop(_file_key(self.graph_path), None)
        if self.embeddings:
            nodes = checked.nodes if checked else read_graph(self.graph_path)
            runner = EmbeddingRunner.from_nodes(nodes, INPUT_NODE, OUTPUT_NODE, self.graph_path)
        else:
            runner = checked.runner if checked else GraphRunner.from_pb(self.graph_path)
        return runner.to(self.device).eval()

    @property
    def runner(self):
        """The PyTorch runner on ``device`` (None for Essentia's backend)."""
        if self._runner is None and self.backend == "torch":
            self._runner = self._build_runner()
        return self._runner

    @property
    def embedding_node(self):
        """The graph node whose output is kept as the VGGish embedding (with embeddings)."""
        return self.runner.node

    @property
    def on_gpu(self):
        """Whether the graph runs on an accelerator, the main process batching its patches."""
        return self.backend == "torch" and self.device.type != "cpu"

    def __call__(self):
        """This process's speech model."""
        if self.backend == "torch":
            return TorchSpeechModel(self.runner, self.embeddings)
        if self._essentia is None:
            self._essentia = EssentiaSpeechModel(self.graph_path)
        return self._essentia

    def for_preparing(self):
        """The model of the preparing step (see the class docstring)."""
        return UnitsOnlySpeechModel() if self.on_gpu else self()

    def attach(self, evidence):
        """``evidence`` from a preparing process, going on with this process's runner."""
        return evidence.attach(self.runner) if self.backend == "torch" else evidence

    def complete(self, evidences):
        """Run every unit still unseen in ``evidences`` on the runner, their input patches
        computed on its device, all stems' in batches of ``PATCH_BATCH``."""
        import torch

        from stemeval.speech.graph import run_batches

        if self._device_patches is None:
            self._device_patches = DevicePatches(self.device)
        with torch.inference_mode():
            pending = [(evidence, evidence.unseen_patches(self._device_patches))
                       for evidence in evidences]
            pending = [(evidence, patches) for evidence, patches in pending if len(patches)]
            if not pending:
                return
            patches = torch.cat([patches for _, patches in pending])
            step = self.runner.embed if self.embeddings else lambda chunk: (self.runner(chunk),)
            outputs = run_batches(step, patches, self.PATCH_BATCH, self.device)
        start = 0
        for evidence, patches in pending:
            stop = start + len(patches)
            evidence.complete(*(output[start:stop] for output in outputs))
            start = stop


def check_embeddings_backend(backend):
    """UserError unless the VGGish embeddings can be kept with the speech ``backend``."""
    if backend != "torch":
        raise UserError(f"--embeddings-from vggish runs the speech graph in PyTorch, not with "
                        f"--speech-backend {backend}")


def speech_model_factory(graph_path, backend="torch", device="cpu", embeddings=False):
    """The ``SpeechModels`` of the graph at ``graph_path``: call it for this process's model."""
    return SpeechModels(graph_path, backend, device, embeddings)


_ESSENTIA_PREFIXES = ("Error while configuring TensorflowPredictVGGish: ", "TensorflowPredict: ")


class SpeechModelError(ValueError):
    """The file is not a speech model the gate can run; the message says why."""


def check_speech_graph(path, backend=None):
    """Raise SpeechModelError unless the graph at ``path`` gives (1, 8) for one patch of
    silence, run as the gate will run it: with ``backend`` ``"torch"`` by the PyTorch runner
    (or by Essentia's TensorFlow, where installed, for a graph with an op the runner does not
    know, as the gate then falls back to it), with ``"essentia"`` by Essentia's TensorFlow.
    ``None`` (the published check): Essentia's TensorFlow where it is installed
    (essentia-tensorflow), else the PyTorch runner (plain essentia has no TensorFlow). The
    graph a PyTorch check reads, and the runner it builds, are kept for the run that follows
    (with or without embeddings, and for a second check of the unchanged file), so the file
    is read once.

    Anything but a regular file is refused first: Essentia's TensorflowPredictVGGish
    crashes the process (a segmentation fault) when given a folder."""
    if not Path(path).is_file():
        raise SpeechModelError("it is a folder, not a .pb graph file" if Path(path).is_dir()
                               else "it is not a regular file (a .pb graph file)")
    if backend is None:
        backend = "essentia" if has_essentia_tensorflow() else "torch"
    output = (_run_in_essentia(path) if backend == "essentia" and has_essentia_tensorflow()
              else _run_in_pytorch(path))
    shape = tuple(np.shape(output))
    if shape != (1, NUM_CLASSES):
        raise SpeechModelError(f"it gives an output of shape {shape} for one patch, "
                               f"expected (1, {NUM_CLASSES})")
    return Path(path)


def has_essentia_tensorflow():
    """Whether Essentia's TensorFlow algorithms are installed (essentia-tensorflow, not the
    plain essentia wheel)."""
    return hasattr(essentia_standard(), "TensorflowPredictVGGish")


class CheckedGraph(NamedTuple):
    """What a file check read (``speech_graph.read_graph``) and the runner it built from
    that; the runner's weights are the nodes' arrays, so keeping both costs little."""

    nodes: list  # of speech_graph.Node
    runner: object  # a speech_graph.GraphRunner


_checked_graphs = {}  # file key -> the last file check's CheckedGraph, for the run that follows


def forget_checked_graphs():
    """Free what the file checks kept, in a process that will not run the gate."""
    _checked_graphs.clear()


def _file_key(path):
    """A graph file as it is now: the same key means the same bytes (path, size, time)."""
    stat = os.stat(path)
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino


def _run_in_essentia(path):
    """The graph's output for one patch of silence, by Essentia's TensorFlow."""
    try:
        model = essentia_standard().TensorflowPredictVGGish(
            graphFilename=str(path), input=INPUT_NODE, output=OUTPUT_NODE)
        return model(np.zeros(CHECK_SAMPLES, dtype=np.float32))
    except RuntimeError as error:
        raise SpeechModelError(f"Essentia cannot run it: {_essentia_reason(error)}") from None


def _run_in_pytorch(path):
    """The graph's output for one patch of silence, by the PyTorch runner (by Essentia's
    TensorFlow, where installed, for a graph with an op the runner does not know)."""
    import torch

    from stemeval.speech.graph import GraphRunner, InvalidGraph, UnsupportedGraph, read_graph

    key = _file_key(path)
    checked = _checked_graphs.get(key)  # the same file, checked before and not used since
    if checked is None:
        _checked_graphs.clear()
        try:
            nodes = read_graph(path)
            checked = CheckedGraph(nodes, GraphRunner.from_nodes(nodes, source=str(path)).eval())
        except InvalidGraph as error:
            raise SpeechModelError(f"not a speech graph ({error})") from None
        except UnsupportedGraph as error:
            if has_essentia_tensorflow():
                return _run_in_essentia(path)
            raise SpeechModelError(f"{error}, and Essentia's TensorFlow (essentia-tensorflow), "
                                   f"which could run it, is not installed") from None
        _checked_graphs[key] = checked
    patch = torch.from_numpy(patch_bands(np.zeros(CHECK_SAMPLES, np.float32), [0]))
    with torch.inference_mode():
        return checked.runner(patch).numpy()


def _essentia_reason(error):
    text = one_line(error)
    for prefix in _ESSENTIA_PREFIXES:
        text = text.removeprefix(prefix)
    return text

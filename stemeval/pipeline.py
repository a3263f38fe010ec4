"""The per-stem pipeline and the loop that runs it over a dataset.

Each stem is *prepared* on the CPU (decode, speech gate, silence trim, resample, fbank),
possibly in worker threads, then *classified* by the AST in batches. Rows are written in
the stems' order, one flushed row per stem; a stem that raises gets an ``error`` row.
"""

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from AST.labels import map_prediction
from stemeval.audio import decode, resample_16k
from stemeval.features import fbank_features
from stemeval.precision import sigmoid_scores
from stemeval.prediction import choose_label, top_labels
from stemeval.results import ERROR
from stemeval.silence import trim_silence
from stemeval.speech import GATE_SCORE, SPEECH_LABEL_MIN_SCORE

SPEECH = "speech"
CPU_BATCH_SIZE = 4  # larger batches are no faster on a CPU
GPU_BYTES_PER_STEM = 256 * 2 ** 20  # AST activations per stem in a batch, generously
MAX_GPU_BATCH_SIZE = 64


def default_batch_size(device):
    """Stems per AST forward pass: 4 on a CPU; on CUDA, as many as free memory allows."""
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_BATCH_SIZE
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(MAX_GPU_BATCH_SIZE, free // GPU_BYTES_PER_STEM))


def default_workers(device):
    """Preparing threads: one beside a CPU's AST; on CUDA one per CPU core, to keep the GPU fed."""
    if torch.device(device).type != "cuda":
        return 1
    return len(os.sched_getaffinity(0))


@dataclass
class Prepared:
    """A stem after the CPU steps: a finished row, or fbank features awaiting the AST."""

    stem: object
    speech: object = None  # SpeechEvidence
    features: torch.Tensor = None
    row: dict = None


def _error_row(stem, error):
    reason = f"{type(error).__name__}: {error}".strip()
    return {"label": stem.label, "path": stem.path, "prediction": ERROR,
            "proposed_label": ERROR, "error": " ".join(reason.split())}


class Evaluator:
    """Everything needed to turn a stem into a row.

    ``speech_model_factory`` builds a speech model (an object with ``evidence(audio)``);
    one is built per thread, because Essentia's algorithms are not thread-safe.
    ``deform`` (a ``stemeval.deform.Deformer``) deforms each decoded stem before the gate;
    ``decode`` replaces ``stemeval.audio.decode`` (a sweep passes its per-process cache).
    """

    def __init__(self, model, speech_model_factory, dataset, device="cpu", precision="fp32",
                 details=False, deform=None, decode=decode):
        self.device = torch.device(device)
        self.details = details
        self.model = model.to(self.device).eval()
        self.frames = model.config.input_tdim
        self.dataset = dataset
        self.precision = precision
        self.deform = deform
        self._decode = decode
        self._speech_model_factory = speech_model_factory
        self._per_thread = threading.local()

    def _speech_model(self):
        if not hasattr(self._per_thread, "speech_model"):
            self._per_thread.speech_model = self._speech_model_factory()
        return self._per_thread.speech_model

    def prepare(self, stem):
        """Decode, gate, trim, resample and featurise one stem; never raises."""
        try:
            decoded = self._decode(stem.path)
            if self.deform is not None:
                decoded = self.deform(decoded, stem.path)
            audio_16k = resample_16k(decoded.essentia_mono, decoded.rate)
            speech = self._speech_model().evidence(audio_16k)
            if speech.at_least(GATE_SCORE):
                return Prepared(stem, row={
                    "label": stem.label, "path": stem.path, "prediction": SPEECH,
                    "proposed_label": SPEECH, **self._speech_details(speech)})
            excerpt = trim_silence(decoded.pcm_mono)
            wave = resample_16k(excerpt.to_float(), excerpt.rate)
            return Prepared(stem, speech, features=fbank_features(wave, self.frames))
        except Exception as error:  # one bad stem must not stop the run
            return Prepared(stem, row=_error_row(stem, error))

    def _speech_details(self, speech):
        """The exact speech score, computed only when --details asks for it."""
        return {"speech_score": repr(speech.score())} if self.details else {}

    def scores(self, features):
        """AST sigmoid scores ``[B, classes]`` (numpy) for a list of fbank tensors."""
        return sigmoid_scores(self.model, torch.stack(features).to(self.device), self.precision)

    def _scored(self, items):
        """``(item, scores or the exception)`` per item; a batch that runs out of GPU memory
        is split in half and retried, down to one stem."""
        try:
            return list(zip(items, self.scores([item.features for item in items])))
        except torch.cuda.OutOfMemoryError as error:
            if len(items) == 1:
                return [(items[0], error)]
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            half = len(items) // 2
            return self._scored(items[:half]) + self._scored(items[half:])
        except Exception as error:
            return [(item, error) for item in items]

    def classify(self, prepared):
        """Fill in the rows of prepared stems that await the AST, as one batch."""
        for item, scores in self._scored([item for item in prepared if item.row is None]):
            try:  # the lazy speech evidence runs here, per stem
                item.row = (_error_row(item.stem, scores) if isinstance(scores, Exception)
                            else self._row(item, scores))
            except Exception as error:
                item.row = _error_row(item.stem, error)
            item.features = item.speech = None

    def _row(self, item, scores):
        label, score = choose_label(
            scores, lambda: item.speech.at_least(SPEECH_LABEL_MIN_SCORE))
        return {
            "label": item.stem.label, "path": item.stem.path, "prediction": label,
            "proposed_label": map_prediction(label, self.dataset), "score": repr(score),
            "top5": "; ".join(f"{name} ({value!r})" for name, value in top_labels(scores)),
            **self._speech_details(item.speech),
        }


def _prepared_in_order(evaluator, stems, workers, lookahead):
    """Prepared stems in input order; with workers, at most ``lookahead`` ahead in flight."""
    if workers == 0:
        for stem in stems:
            yield evaluator.prepare(stem)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare") as pool:
        pending = deque()
        stems = iter(stems)
        for stem in stems:
            pending.append(pool.submit(evaluator.prepare, stem))
            if len(pending) >= lookahead:
                break
        while pending:
            yield pending.popleft().result()
            next_stem = next(stems, None)
            if next_stem is not None:
                pending.append(pool.submit(evaluator.prepare, next_stem))


def run(evaluator, stems, write, batch_size=1, workers=0):
    """Evaluate ``stems`` and pass each finished row to ``write``, in the stems' order."""
    queue = []

    def flush():
        evaluator.classify(queue)
        for item in queue:
            write(item.row)
        queue.clear()

    for prepared in _prepared_in_order(evaluator, stems, workers, lookahead=workers + batch_size):
        queue.append(prepared)
        waiting = sum(item.row is None for item in queue)
        if waiting == 0 or waiting >= batch_size:
            flush()
    flush()

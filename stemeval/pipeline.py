"""The per-stem pipeline, for any tagger: from a stem to its row (``stemeval.run`` runs it
over a dataset).

Each stem is *prepared* on the CPU (decode, speech gate, silence trim, then the tagger's own
features), then *classified* by the tagger in batches; a stem that raises gets an ``error``
row. AudioSet taggers' scores go through the 91-label filter, the Speech rule and the
dataset's category map by label name; a zero-shot tagger's best category is the row's
answer directly.
"""

import threading
from dataclasses import dataclass

import numpy as np
import torch

from stemeval import datasets
from stemeval.audio import decode
from stemeval.precision import autocast
from stemeval.prediction import choose_label, top_labels
from stemeval.resample import resample_16k
from stemeval.results import ERROR
from stemeval.silence import trim_silence
from stemeval.speech import GATE_SCORE, SPEECH_LABEL_MIN_SCORE

SPEECH = "speech"


@dataclass
class Prepared:
    """A stem after the CPU steps: a finished row, features awaiting the tagger, or both
    (a speech-gated stem whose embedding is wanted)."""

    stem: object
    speech: object = None  # SpeechEvidence
    features: torch.Tensor = None
    row: dict = None
    embedding: object = None  # numpy float32 [D], once the tagger has run


def _error_row(stem, error):
    reason = f"{type(error).__name__}: {error}".strip()
    return {"label": stem.label, "path": stem.path, "prediction": ERROR,
            "proposed_label": ERROR, "error": " ".join(reason.split())}


class Evaluator:
    """Everything needed to turn a stem into a row.

    ``category_map`` (a ``stemeval.datasets.categories.CategoryMap``, or a dataset's name for
    its own map) maps an AudioSet tagger's chosen label to the dataset's category. ``speech_model_factory`` builds a
    speech model (an object with ``evidence(audio)``); one is built per thread, because
    Essentia's algorithms are not thread-safe.
    ``deform`` (a ``stemeval.deform.Deformer``) deforms each decoded stem before the gate;
    ``decode`` replaces ``stemeval.audio.decode`` (a sweep passes its per-process cache).
    With ``embeddings``, speech-gated stems are trimmed and run through the tagger too, so
    that every stem with audio gets an embedding; their rows stay ``speech``.
    """

    def __init__(self, tagger, speech_model_factory, category_map, device="cpu",
                 precision="fp32", details=False, deform=None, decode=decode, embeddings=False):
        self.device = torch.device(device)
        self.details = details
        self.embeddings = embeddings
        self.tagger = tagger.to(self.device)
        self.category_map = datasets.category_map(category_map)
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
        """Decode, gate, trim and featurise one stem; never raises."""
        try:
            decoded = self._decode(stem.path)
            if self.deform is not None:
                decoded = self.deform(decoded, stem.path)
            audio_16k = resample_16k(decoded.essentia_mono, decoded.rate)
            speech = self._speech_model().evidence(audio_16k)
            if speech.at_least(GATE_SCORE):
                row = {"label": stem.label, "path": stem.path, "prediction": SPEECH,
                       "proposed_label": SPEECH, **self._speech_details(speech)}
                if not self.embeddings:
                    return Prepared(stem, row=row)
                return Prepared(stem, row=row, features=self._excerpt_features(decoded, row))
            return Prepared(stem, speech, features=self._excerpt_features(decoded))
        except Exception as error:  # one bad stem must not stop the run
            return Prepared(stem, row=_error_row(stem, error))

    def _excerpt_features(self, decoded, speech_row=None):
        """The tagger's features of the trimmed excerpt; a speech row keeps its row (and gets
        no embedding) when the excerpt cannot be made."""
        try:
            return self.tagger.features(trim_silence(decoded.pcm_mono))
        except Exception:
            if speech_row is None:
                raise
            return None

    def _speech_details(self, speech):
        """The exact speech score, computed only when --details asks for it."""
        return {"speech_score": repr(speech.score())} if self.details else {}

    def run_tagger(self, features):
        """``TaggerOutput`` for a list of feature tensors, under the run's precision."""
        with autocast(self.device, self.precision):
            return self.tagger.forward(features, self.device)

    def _run(self, items):
        """``(item, scores, embedding)`` per item, or ``(item, exception, None)``; a batch
        that runs out of GPU memory is split in half and retried, down to one stem."""
        try:
            output = self.run_tagger([item.features for item in items])
            return list(zip(items, output.scores.numpy(), output.embeddings.numpy()))
        except torch.cuda.OutOfMemoryError as error:
            if len(items) == 1:
                return [(items[0], error, None)]
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            half = len(items) // 2
            return self._run(items[:half]) + self._run(items[half:])
        except Exception as error:
            return [(item, error, None) for item in items]

    def classify(self, prepared):
        """Fill in the rows (and embeddings) of prepared stems that await the tagger."""
        waiting = [item for item in prepared if item.features is not None]
        if not waiting:
            return
        for item, scores, embedding in self._run(waiting):
            if self.embeddings and embedding is not None:
                item.embedding = embedding
            if item.row is None:
                try:  # the lazy speech evidence runs here, per stem
                    item.row = (_error_row(item.stem, scores) if isinstance(scores, Exception)
                                else self._row(item, scores))
                except Exception as error:
                    item.row = _error_row(item.stem, error)
            item.features = item.speech = None

    def _row(self, item, scores):
        tagger = self.tagger
        if tagger.labels is None:  # zero-shot: the best category is the answer
            best = int(np.argmax(scores))
            label, score = tagger.categories[best], float(scores[best])
            proposed = label
            top = top_labels(scores, labels=tagger.categories)
        else:
            label, score = choose_label(
                scores, lambda: item.speech.at_least(SPEECH_LABEL_MIN_SCORE),
                labels=tagger.labels)
            proposed = self.category_map.category(label)
            top = top_labels(scores, labels=tagger.labels)
        return {
            "label": item.stem.label, "path": item.stem.path, "prediction": label,
            "proposed_label": proposed, "score": repr(score),
            "top5": "; ".join(f"{name} ({value!r})" for name, value in top),
            **self._speech_details(item.speech),
        }

"""The per-stem pipeline, for any tagger: from a stem to its rows (``stemeval.engine.run`` runs it
over a dataset).

A stem is *prepared* on the CPU by a ``Preparer``, in a worker process: decoded once, then
for each condition deformed, gated (the speech model's evidence), trimmed and read by each
tagger's feature extractor. The main process then *classifies*: an ``Evaluator`` per
(condition, tagger) runs the tagger in batches and makes the row. A stem that raises gets
an ``error`` row. AudioSet taggers' scores go through the 91-label filter, the Speech rule
and the dataset's category map by label name; a zero-shot tagger's best category is the
row's answer directly.
"""

from dataclasses import dataclass, field

import torch

from stemeval import datasets
from stemeval.audio.decode import decode
from stemeval.audio.resample import resample_16k
from stemeval.audio.silence import trim_silence
from stemeval.engine.precision import autocast
from stemeval.labels.audioset import INSTRUMENT_LABELS
from stemeval.labels.pick import SPEECH, pick, top_labels
from stemeval.runfiles.kept_scores import AT_LEAST, BELOW, NOT_ASKED, StemScores
from stemeval.runfiles.results import ERROR
from stemeval.speech.gate import GATE_SCORE, SPEECH_LABEL_MIN_SCORE
from stemeval.taggers.interface import pack


@dataclass
class Prepared:
    """A stem awaiting (or done with) one tagger in the main process: a finished row,
    features awaiting the tagger, or both (a speech-gated stem whose embedding is wanted)."""

    stem: object
    speech: object = None  # SpeechEvidence
    features: torch.Tensor = None
    row: dict = None
    embedding: object = None  # numpy float32, as ``taggers.interface.pack`` lays it out
    kept: object = None  # kept_scores.StemScores, with keep_scores, once the row is made


@dataclass
class PreparedCondition:
    """One condition of a prepared stem: its speech evidence, whether the gate sent it to
    speech (None: not decided yet, the graph running in the main process), and each tagger's
    features of its trimmed excerpt; or the reason it failed."""

    speech: object = None  # SpeechEvidence
    gated: bool = None
    features: list = None  # one tensor per tagger, or None when not computed
    failure: str = None  # why the stem failed before the gate (an error row)
    excerpt_failure: str = None  # why no excerpt could be made (an error row unless gated)

    @property
    def awaits_networks(self):
        """Whether the main process's networks (the gate's or a tagger's) still have work."""
        return self.failure is None and (self.gated is None or self.features is not None)


@dataclass
class PreparedStem:
    stem: object
    conditions: list = field(default_factory=list)  # PreparedCondition per condition


def failure_reason(error):
    """An exception as the one-line reason of an error row."""
    reason = f"{type(error).__name__}: {error}".strip()
    return " ".join(reason.split())


def _error_row(stem, reason):
    return {"label": stem.label, "path": stem.path, "prediction": ERROR,
            "proposed_label": ERROR, "error": reason}


class Preparer:
    """The CPU steps of every stem, run in worker processes (never raises).

    ``deformers``: one per condition (None: the stem as decoded); ``taggers``: whose
    features are made (their networks are not used here); ``speech_models``: a
    ``stemeval.speech.gate.SpeechModels``, whose ``for_preparing()`` model is built once per
    process; with ``features_for_speech``, speech-gated stems are trimmed and read by the
    taggers too, so that every stem with audio gets an embedding.
    """

    def __init__(self, deformers, taggers, speech_models, features_for_speech=False):
        self.deformers = list(deformers)
        self.taggers = list(taggers)
        self.speech_models = speech_models
        self.features_for_speech = features_for_speech
        self._speech_model = None

    def __getstate__(self):
        return {**self.__dict__, "_speech_model": None}

    def __call__(self, stem):
        try:
            decoded = decode(stem.path)
        except Exception as error:  # one bad stem must not stop the run
            reason = failure_reason(error)
            return PreparedStem(stem, [PreparedCondition(failure=reason) for _ in self.deformers])
        return PreparedStem(stem, [self._condition(stem, decoded, deform)
                                   for deform in self.deformers])

    def _condition(self, stem, decoded, deform):
        try:
            if deform is not None:
                decoded = deform(decoded, stem.path)
            if self._speech_model is None:
                self._speech_model = self.speech_models.for_preparing()
            speech = self._speech_model.evidence(resample_16k(decoded.essentia_mono,
                                                              decoded.rate))
            gated = None if self.speech_models.on_gpu else speech.at_least(GATE_SCORE)
        except Exception as error:
            return PreparedCondition(failure=failure_reason(error))
        prepared = PreparedCondition(speech=speech, gated=gated)
        if gated and not self.features_for_speech:
            return prepared
        try:
            excerpt = trim_silence(decoded.pcm_mono)
            prepared.features = [tagger.features(excerpt) for tagger in self.taggers]
        except Exception as error:
            prepared.excerpt_failure = failure_reason(error)
        return prepared


class Evaluator:
    """One tagger on one condition in the main process: from prepared stems to rows.

    ``category_map`` (a ``stemeval.datasets.categories.CategoryMap``, or a dataset's name for
    its own map) maps an AudioSet tagger's chosen label to the dataset's category.
    ``speech_models`` (a ``stemeval.speech.gate.SpeechModels``) is the speech gate's;
    ``deform`` (a ``stemeval.audio.deform.Deformer``, None for the stems as they are) the
    condition. ``embeddings``: False, or where each stem's embedding comes from: ``"tagger"``
    (or True), its forward pass; ``"vggish"``, the speech graph's VGGish embedding of every
    patch of the stem and their mean (``speech_models`` built with ``embeddings``). Either
    way speech-gated stems get an embedding too (their rows stay ``speech``) and error rows
    none.
    With ``keep_scores``, each stem with a row other than error gets the ``StemScores`` it was
    derived from (``stemeval.runfiles.kept_scores``).
    """

    def __init__(self, tagger, speech_models, category_map, device="cpu",
                 precision="fp32", details=False, deform=None, embeddings=False,
                 keep_scores=False):
        self.device = torch.device(device)
        self.details = details
        self.embeddings = "tagger" if embeddings is True else embeddings or None
        self.keep_scores = keep_scores
        self.tagger = tagger.to(self.device)
        self.category_map = datasets.category_map(category_map)
        self.precision = precision
        self.deform = deform
        self.speech_models = speech_models

    def item(self, stem, prepared, tagger_index=0):
        """The ``Prepared`` item of one stem's ``PreparedCondition`` for this tagger (the
        ``tagger_index``-th of the features); its speech evidence is complete or attached."""
        if prepared.failure is not None:
            return Prepared(stem, row=_error_row(stem, prepared.failure))
        try:
            gated = (prepared.speech.at_least(GATE_SCORE) if prepared.gated is None
                     else prepared.gated)
            features = (prepared.features[tagger_index] if prepared.features is not None
                        else None)
            if gated:
                row = {"label": stem.label, "path": stem.path, "prediction": SPEECH,
                       "proposed_label": SPEECH, **self._speech_details(prepared.speech)}
                return Prepared(stem, row=row, embedding=self._vggish(prepared.speech),
                                features=features if self.embeddings == "tagger" else None,
                                kept=StemScores(None, gated=True) if self.keep_scores else None)
            if prepared.excerpt_failure is not None:
                return Prepared(stem, row=_error_row(stem, prepared.excerpt_failure))
            return Prepared(stem, prepared.speech, features=features,
                            embedding=self._vggish(prepared.speech))
        except Exception as error:  # the speech graph failing in this process
            return Prepared(stem, row=_error_row(stem, failure_reason(error)))

    def _vggish(self, speech):
        """The stem's VGGish embedding (the mean over its patches) with its patches', when
        they are kept; None for a stem shorter than a patch."""
        patches = speech.patch_embeddings if self.embeddings == "vggish" else None
        return None if patches is None or not len(patches) else pack(patches.mean(0), patches)

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
            return list(zip(items, output.scores.numpy(), output.stem_embeddings()))
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
            if self.embeddings == "tagger" and embedding is not None:
                item.embedding = embedding
            if item.kept is not None and embedding is not None:  # a gated stem's scores
                item.kept.scores = scores
            if item.row is None:
                try:  # the lazy speech evidence runs here, per stem
                    item.row = (_error_row(item.stem, failure_reason(scores))
                                if isinstance(scores, Exception) else self._row(item, scores))
                except Exception as error:
                    item.row = _error_row(item.stem, failure_reason(error))
            if item.row["prediction"] == ERROR:
                item.embedding = None
            item.features = item.speech = None

    def _row(self, item, scores):
        tagger = self.tagger
        answers = []  # the Speech rule's answer, if the pick asks it

        def speech_allowed():
            answers.append(item.speech.at_least(SPEECH_LABEL_MIN_SCORE))
            return answers[-1]

        zero_shot = tagger.labels is None
        label, score, proposed = pick(scores, speech_allowed, self.category_map,
                                      labels=tagger.labels,
                                      categories=tagger.categories if zero_shot else None)
        top = (top_labels(scores, labels=tagger.categories) if zero_shot
               else top_labels(scores, labels=tagger.labels, among=INSTRUMENT_LABELS))
        row = {
            "label": item.stem.label, "path": item.stem.path, "prediction": label,
            "proposed_label": proposed, "score": repr(score),
            "top5": "; ".join(f"{name} ({value!r})" for name, value in top),
            **self._speech_details(item.speech),
        }
        if self.keep_scores:
            item.kept = StemScores(scores, gated=False, speech_rule=(
                NOT_ASKED if not answers else AT_LEAST if answers[0] else BELOW))
        return row

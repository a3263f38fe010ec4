"""The label pick, the Speech rules and the dataset maps against the published code's.

Oracle: ``tests/helpers/published.py``, the published ``tellifisspeech`` / ``make_instrument_pred``
/ ``map_to_proposed_label`` written again from the published source. Random score vectors,
many with Speech ranked first and speech scores close to 8, go through this project's
speech evidence, label choice and mapping (the pipeline's ``classify``).
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stemeval.datasets import Stem, category_map
from stemeval.engine.pipeline import Evaluator, Prepared
from stemeval.labels.audioset import AUDIOSET_LABELS
from stemeval.speech.gate import GATE_SCORE, ComputedActivations, SpeechEvidence
from stemeval.taggers.interface import TaggerOutput
from tests.helpers import published

SPEECH = AUDIOSET_LABELS.index("Speech")
CASES = 3000


def _activations(rng, target):
    """Patch activations (float32, [n, 8]) whose speech score is close to ``target``."""
    n = int(rng.integers(0, 40))
    acts = rng.uniform(0, 1, (n, 8)).astype(np.float32)
    if n:
        column = rng.normal(target / 100, 0.002, n).clip(0, 1)
        acts[:, 7] = (column - column.mean() + target / 100).clip(0, 1)
    return acts


def _scores(rng):
    """527 sigmoid-like scores: spread, tied, or with Speech first by a hair."""
    kind = rng.integers(4)
    scores = rng.uniform(0, 1, 527).astype(np.float32)
    if kind == 1:  # coarse values, many ties
        scores = np.round(scores, 2)
    elif kind >= 2:  # Speech first
        scores[SPEECH] = scores.max() + np.float32(rng.choice([1e-7, 1e-3, 0.2]))
    return scores


class _ScoredEvaluator(Evaluator):
    """The pipeline's classify step on given score vectors instead of an AST's."""

    def __init__(self, dataset, vectors):
        self.category_map = category_map(dataset)
        self.details, self.embeddings, self.keep_scores = False, False, False
        self._vectors = vectors
        self.tagger = SimpleNamespace(labels=AUDIOSET_LABELS)

    def run_tagger(self, features):
        scores = torch.from_numpy(np.stack([self._vectors[int(f)] for f in features]))
        return TaggerOutput(scores, torch.zeros(len(features), 1))


@pytest.mark.parametrize("dataset", ["dsd100", "moisesdb"])
def test_rows_equal_the_published_pick_and_map(dataset):
    rng = np.random.default_rng(8 if dataset == "dsd100" else 9)
    vectors, items, expected, speech_scores = [], [], [], []
    for case in range(CASES):
        target = rng.choice([rng.uniform(0, 100), rng.uniform(7.9, 8.1), 8.0, 50.0])
        acts = _activations(rng, target)
        scores = _scores(rng)
        evidence = SpeechEvidence(ComputedActivations(acts))
        row = published.published_row(scores, AUDIOSET_LABELS, acts, dataset)
        if evidence.at_least(GATE_SCORE):  # the gate, in the pipeline's prepare step
            assert row == ("speech", "speech"), case
            continue
        vectors.append(scores)
        items.append(Prepared(Stem(f"{case}.wav", "x"), evidence,
                              features=np.float32(len(vectors) - 1)))
        expected.append(row)
        speech_scores.append(published.published_speech_score(acts))
    _ScoredEvaluator(dataset, vectors).classify(items)
    got = [(item.row["prediction"], item.row["proposed_label"]) for item in items]
    assert got == expected
    # the cases that matter occur often: Speech first with a speech score just below 8
    # (passed over) and just at or above it (kept)
    first = [score for score, scores in zip(speech_scores, vectors) if scores.argmax() == SPEECH]
    assert sum(7.9 <= score < 8 for score in first) > 50
    assert sum(8 <= score <= 8.1 for score in first) > 50

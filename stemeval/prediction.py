"""From the AST's 527 scores to the row's prediction and proposed label."""

import numpy as np

from stemeval.audioset import AUDIOSET_LABELS, INSTRUMENT_LABELS, SPEECH_LABEL


def choose_label(scores, speech_allowed, labels=AUDIOSET_LABELS):
    """The best-scoring instrument label, lower-cased, and its score.

    ``Speech`` is passed over unless ``speech_allowed()`` (the speech gate's score is >= 8),
    which is asked only when Speech ranks first. The ranking is ``np.argsort(scores)[::-1]``,
    as in the AST's published inference code.
    """
    for index in np.argsort(scores)[::-1]:
        name = labels[index]
        if name not in INSTRUMENT_LABELS:
            continue
        if name == SPEECH_LABEL and not speech_allowed():
            continue
        return name.lower(), float(scores[index])
    raise ValueError("no instrument label among the model's classes")


def top_labels(scores, count=5, labels=AUDIOSET_LABELS):
    """The ``count`` highest-scoring labels with their scores, best first."""
    return [(labels[index], float(scores[index])) for index in np.argsort(scores)[::-1][:count]]

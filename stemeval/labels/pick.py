"""From a tagger's scores to the row's prediction and proposed label: the published pick.

One definition, used where a run makes its rows (``stemeval.engine.pipeline``) and where a scoring
command re-derives them from the kept scores (``stemeval.runfiles.kept_scores``).
"""

import numpy as np

from stemeval.labels.audioset import AUDIOSET_LABELS, INSTRUMENT_LABELS, SPEECH_LABEL

SPEECH = "speech"  # the row of a stem the speech gate sends to speech: speech,speech


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


def pick(scores, speech_allowed, category_map, labels=None, categories=None):
    """``(prediction, score, proposed label)`` of one stem the tagger ran on.

    AudioSet scores (``labels``, their display names in score order): ``choose_label``, then
    the map's category of the label. Zero-shot scores (``labels`` None, over
    ``categories``): the best category is both the prediction and the proposed label.
    """
    if labels is None:
        best = int(np.argmax(scores))
        return categories[best], float(scores[best]), categories[best]
    label, score = choose_label(scores, speech_allowed, labels=labels)
    return label, score, category_map.category(label)


def top_labels(scores, count=5, labels=AUDIOSET_LABELS, among=None):
    """The ``count`` highest-scoring labels with their scores, best first; only labels in
    ``among`` when given (the instrument labels, for AudioSet taggers)."""
    ranked = (index for index in np.argsort(scores)[::-1]
              if among is None or labels[index] in among)
    return [(labels[index], float(scores[index])) for index, _ in zip(ranked, range(count))]

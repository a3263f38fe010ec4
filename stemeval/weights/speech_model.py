"""The speech model file: accepted only if Essentia can run it as the speech gate will.

A file is checked by running ``TensorflowPredictVGGish`` with the gate's node names on one
second of 16 kHz silence (one patch); it must give 8 class activations.
"""

from pathlib import Path

import numpy as np

from AST.models import messages
from AST.models.download import DownloadError, Unreachable, download
from AST.models.sources import FETCH_COMMAND, speech_model_url
from stemeval.errors import UserError, one_line
from stemeval.essentia_setup import essentia_standard
from stemeval.audio import SAMPLE_RATE
from stemeval.speech import INPUT_NODE, NUM_CLASSES, OUTPUT_NODE

_ESSENTIA_PREFIXES = ("Error while configuring TensorflowPredictVGGish: ", "TensorflowPredict: ")


class SpeechModelError(ValueError):
    """The file is not a speech model the gate can run; the message says why."""


def check_speech_graph(path):
    """Raise SpeechModelError unless Essentia runs ``path`` and gives (1, 8) for one patch."""
    predict = essentia_standard().TensorflowPredictVGGish
    try:
        model = predict(graphFilename=str(path), input=INPUT_NODE, output=OUTPUT_NODE)
        output = model(np.zeros(SAMPLE_RATE, dtype=np.float32))
    except RuntimeError as error:
        raise SpeechModelError(f"Essentia cannot run it: {_essentia_reason(error)}") from None
    shape = tuple(np.shape(output))
    if shape != (1, NUM_CLASSES):
        raise SpeechModelError(f"it gives an output of shape {shape} for one patch, "
                               f"expected (1, {NUM_CLASSES})")
    return Path(path)


def ensure_speech_model(spec, default):
    """The checked speech model: ``spec`` if given (never downloaded), else ``default``."""
    if spec is not None:
        return _checked(Path(spec), hint="")
    if default.exists():
        return _checked(default, hint=f"; delete it and run \"{FETCH_COMMAND} speech-model\"")
    return _download(default)


def _checked(path, hint):
    if not path.is_file():
        raise UserError(f"speech model {path} does not exist" if not path.exists()
                        else f"speech model {path} is not a file")
    try:
        return check_speech_graph(path)
    except SpeechModelError as error:
        raise UserError(f"speech model {path} is not usable: {error}{hint}") from None


def _download(target):
    url = speech_model_url()
    try:
        return download(url, target, check_speech_graph)
    except Unreachable as error:
        raise UserError(messages.missing_speech_model(target, url, error)) from None
    except DownloadError as error:
        raise UserError(f"speech model download failed: {error}; nothing was saved, "
                        f"run again to retry") from None
    except SpeechModelError as error:
        raise UserError(f"the file downloaded from {url} is not a usable speech model "
                        f"({error}); it was removed") from None


def _essentia_reason(error):
    text = one_line(error)
    for prefix in _ESSENTIA_PREFIXES:
        text = text.removeprefix(prefix)
    return text

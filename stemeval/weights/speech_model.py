"""The speech model file: the given one, or the default fetched from Essentia's site when
missing, checked (``stemeval.speech.gate.check_speech_graph``) before a run uses it."""

from functools import partial
from pathlib import Path

from stemeval.common.errors import UserError
from stemeval.speech.gate import SpeechModelError, check_speech_graph
from stemeval.weights.download import DownloadError, Unreachable, download
from stemeval.weights.sources import (
    FETCH_COMMAND,
    speech_model_url,
    unsupported_address,
)


def ensure_speech_model(spec, default, backend=None):
    """The checked speech model: ``spec`` if given (never downloaded), else ``default``;
    checked as ``backend`` will run it (``check_speech_graph``)."""
    check = partial(check_speech_graph, backend=backend)
    if spec is not None:
        unsupported = unsupported_address(spec, "--speech-model", "a local path")
        if unsupported:
            raise UserError(unsupported)
        return _checked(Path(spec), check, hint="")
    if default.exists():
        return _checked(default, check,
                        hint=f"; delete it and run \"{FETCH_COMMAND} speech-model\"")
    return _download(default, check)


def _checked(path, check, hint):
    if not path.is_file():
        raise UserError(f"speech model {path} does not exist" if not path.exists()
                        else f"speech model {path} is not a file")
    try:
        return check(path)
    except SpeechModelError as error:
        raise UserError(f"speech model {path} is not usable: {error}{hint}") from None


def _download(target, check):
    url = speech_model_url()
    try:
        return download(url, target, check)
    except Unreachable as error:
        raise UserError(missing_message(target, url, error)) from None
    except DownloadError as error:
        raise UserError(f"speech model download failed: {error}; nothing was saved, "
                        f"run again to retry") from None
    except SpeechModelError as error:
        raise UserError(f"the file downloaded from {url} is not a usable speech model "
                        f"({error}); it was removed") from None


def missing_message(path, url, why):
    """The default speech model is missing and its download address could not be reached."""
    return (f"speech model missing: {path.name} is not in {path.parent} and cannot be "
            f"downloaded ({why}); on a machine that is online run \"{FETCH_COMMAND} "
            f"speech-model\" or download {url}, and copy the file there, or pass "
            f"--speech-model PATH")

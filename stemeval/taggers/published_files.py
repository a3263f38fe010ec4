"""The two model files a default run needs, in their published homes in ``AST/``.

- AST weights: ``AST/pretrained_models/audio_mdl.pth`` (the authors' format). When missing,
  the published AudioSet AST is fetched from the Hugging Face hub and saved there.
- Speech model: ``AST/models/genre_rosamerica-vggish-audioset-1.pb``, downloaded from
  Essentia's model site when missing.

Offline, a missing file is a one-line UserError that says where to put it and how to get it;
``load_model_files`` names every unusable file in that one line. ``AST.models`` re-exports
these names at their published import path.
"""

from stemeval.common.errors import UserError
from stemeval.taggers import ast_checkpoint
from stemeval.weights import speech_model
from stemeval.weights.sources import (
    CHECKPOINT_HOME,
    CHECKPOINT_NAME,
    SPEECH_MODEL_HOME,
    SPEECH_MODEL_NAME,
)

DEFAULT_CHECKPOINT = CHECKPOINT_HOME / CHECKPOINT_NAME
DEFAULT_SPEECH_MODEL = SPEECH_MODEL_HOME / SPEECH_MODEL_NAME


def load_ast(spec=None):
    """The checked AudioSet AST (eval mode, CPU) named by ``spec``; None: the default file.

    ``spec``: a path to an authors' ``.pth`` or a Hugging Face model folder, ``hf:<repo id>``,
    or an ``http(s)://`` URL of an authors' ``.pth`` (saved into the default file's folder).
    """
    return load_ast_file(spec)[0]


def load_ast_file(spec=None):
    """``(model, local path of its weights)``: ``load_ast`` plus the file it read, for provenance."""
    return ast_checkpoint.load_ast(spec, DEFAULT_CHECKPOINT)


def ensure_speech_model(spec=None, backend=None):
    """Path of the checked speech model: ``spec`` if given, else the default (fetched if missing).

    An explicit ``spec`` is never downloaded: a missing or invalid file is a UserError.
    ``backend``: the ``--speech-backend`` that will run it, which the check runs it with
    (None: Essentia's TensorFlow where installed, as published).
    """
    return speech_model.ensure_speech_model(spec, DEFAULT_SPEECH_MODEL, backend)


def load_model_files(checkpoint=None, speech_model=None, load_weights=load_ast,
                     speech_backend=None):
    """``(load_weights(checkpoint), ensure_speech_model(speech_model, speech_backend))``; when
    both files are unusable, one UserError names both, so a user placing them by hand learns
    of both at once. ``load_weights``: the loader of the tagger's weights (the AST's by
    default)."""
    found, problems = [], []
    for prepare, spec in ((load_weights, checkpoint),
                          (lambda spec: ensure_speech_model(spec, speech_backend), speech_model)):
        try:
            found.append(prepare(spec))
        except UserError as error:
            problems.append(str(error))
    if problems:
        raise UserError("; and ".join(problems))
    return tuple(found)

"""Where model files come from, where they live, and the environment variables that redirect
them.

The addresses are read when used, not at import, so a test (or a mirror) can point them
elsewhere with the environment alone. ``Released``, ``HubRepo`` and ``PublishedCheckpoint`` describe a tagger's
default weights in the tagger registry (``stemeval.taggers``); neither imports torch or
huggingface_hub until a path is asked for.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Imported inside the functions that use them, so that what needs none of them starts without them:
# huggingface_hub, torch.

PROJECT = Path(__file__).resolve().parents[2]
HF_PREFIX = "hf:"  # --tagger hf:<repo id>, --checkpoint hf:<repo id>
URL_PREFIXES = ("http://", "https://")
FETCH_COMMAND = "stemeval weights fetch"

def unsupported_address(spec, what, takes):
    """A one-line reason when ``spec`` is an address of a scheme no model file is fetched
    from (``ftp://``, ``s3://``, ``file://``...: only http(s) URLs and ``hf:`` ids are), else
    None; ``what``: the option, ``takes``: what it takes instead."""
    scheme, separator, _ = str(spec).partition("://")
    if not separator or not scheme or not (scheme[0].isalpha() and all(
            char.isalnum() or char in "+-." for char in scheme)):
        return None
    if f"{scheme.lower()}://" in URL_PREFIXES:
        return None
    return (f"{what} {spec}: addresses of scheme {scheme}:// are not supported (it takes "
            f"{takes})")


CHECKPOINT_NAME = "audio_mdl.pth"
SPEECH_MODEL_NAME = "genre_rosamerica-vggish-audioset-1.pb"
HOME_ENV = "STEMEVAL_HOME"


def published_home():
    """Where the two published files live: ``AST/`` in a source checkout, as published; for an
    installed package (no ``AST/`` beside it), ``$STEMEVAL_HOME`` or ``~/.cache/stemeval``."""
    if (PROJECT / "AST").is_dir():
        return PROJECT / "AST"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get(HOME_ENV) or cache / "stemeval")


CHECKPOINT_HOME = published_home() / "pretrained_models"
SPEECH_MODEL_HOME = published_home() / "models"

# The published AudioSet AST (0.4593 mAP) in Hugging Face format; the same weights as the
# authors' audioset_10_10_0.4593.pth.
AST_HUB_ID = "MIT/ast-finetuned-audioset-10-10-0.4593"
AUTHORS_CHECKPOINT_NAME = "audioset_10_10_0.4593.pth"

SPEECH_MODEL_URL = ("https://essentia.upf.edu/models/legacy/classifiers/genre_rosamerica/"
                    + SPEECH_MODEL_NAME)
SPEECH_MODEL_URL_ENV = "STEMEVAL_SPEECH_MODEL_URL"


@dataclass(frozen=True)
class Released:
    """A weights file its authors release at a URL, cached in torch hub's checkpoint folder
    (``torch.hub.get_dir()/checkpoints``, so ``TORCH_HOME`` and an existing cache apply)."""

    title: str  # what the file is, e.g. "PANNs CNN14 weights"
    url: str
    file_name: str  # the released name, also the default file's name
    size: str  # approximate, for people deciding whether to fetch it
    licence: str

    def default_path(self):
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints" / self.file_name

    @property
    def home(self):
        return "torch hub's `checkpoints/` folder"


@dataclass(frozen=True)
class HubRepo:
    """A model on the Hugging Face hub, kept in the Hugging Face cache; ``files``: patterns of
    files it needs besides its config and weights (a processor's, say)."""

    repo_id: str
    licence: str
    files: tuple = ()

    @property
    def home(self):
        return "the Hugging Face cache"


@dataclass(frozen=True)
class PublishedCheckpoint:
    """The published AST's weights: ``AST/pretrained_models/audio_mdl.pth`` in the authors'
    format, fetched from the hub model ``repo_id`` and converted when missing."""

    repo_id: str = AST_HUB_ID
    licence: str = "BSD-3-Clause"

    @property
    def home(self):
        return f"`AST/pretrained_models/{CHECKPOINT_NAME}`"


def speech_model_url():
    """The speech model's download address (``STEMEVAL_SPEECH_MODEL_URL`` overrides it)."""
    return os.environ.get(SPEECH_MODEL_URL_ENV) or SPEECH_MODEL_URL


def hub_endpoint():
    """The Hugging Face hub address huggingface_hub will use (``HF_ENDPOINT`` overrides it)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_cache_dir():
    """The hub cache folder (``HF_HUB_CACHE``), read now rather than at huggingface_hub's import."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def hub_offline():
    """True when ``HF_HUB_OFFLINE`` asks huggingface_hub never to go online."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return value in {"1", "ON", "YES", "TRUE"} or constants.HF_HUB_OFFLINE


def host_of(url):
    """The ``host[:port]`` of a URL, as shown in messages."""
    return urlsplit(url).netloc or url

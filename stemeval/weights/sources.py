"""Where the two model files come from, and the environment variables that redirect that.

The addresses are read when used, not at import, so a test (or a mirror) can point them
elsewhere with the environment alone.
"""

import os
from urllib.parse import urlsplit

CHECKPOINT_NAME = "audio_mdl.pth"
SPEECH_MODEL_NAME = "genre_rosamerica-vggish-audioset-1.pb"

# The published AudioSet AST (0.4593 mAP) in Hugging Face format; the same weights as the
# authors' audioset_10_10_0.4593.pth.
AST_HUB_ID = "MIT/ast-finetuned-audioset-10-10-0.4593"
AUTHORS_CHECKPOINT_NAME = "audioset_10_10_0.4593.pth"

SPEECH_MODEL_URL = ("https://essentia.upf.edu/models/legacy/classifiers/genre_rosamerica/"
                    + SPEECH_MODEL_NAME)
SPEECH_MODEL_URL_ENV = "STEMEVAL_SPEECH_MODEL_URL"

FETCH_COMMAND = "python -m AST.models fetch"


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

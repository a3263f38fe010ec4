"""One registry for every tagger's weights: where each comes from, where it is cached, how
it is checked, and the fetch/status of ``python -m AST.models`` for all of them.

The two published files (the AST checkpoint, the speech model) keep their homes and code
(``checkpoint``, ``speech_model``). A tagger module adds its weights by exposing
``MODEL_FILE``, one of:

- ``UrlWeights``: a file downloaded from a URL into torch hub's checkpoint folder
  (``torch.hub.get_dir()/checkpoints``, so ``TORCH_HOME`` and an existing cache apply);
- ``HubWeights``: a Hugging Face model id, kept in the Hugging Face cache.

``build(path)`` is the tagger's strict loader: it returns the model and raises a
``ValueError`` (e.g. ``CheckpointError``) saying why a file is refused (missing or left-over
tensors, class count, label order). It checks a download before it is kept, and every file
before use.
"""

import importlib
from pathlib import Path

from AST.models.checkpoint import HUB_PREFIX, hub_folder
from AST.models.download import DownloadError, Unreachable, download
from AST.models.sources import FETCH_COMMAND, hub_cache_dir
from AST.models.status import FileStatus
from stemeval.errors import UserError, one_line

# --tagger name -> module exposing MODEL_FILE (the AST's weights are the published checkpoint)
TAGGER_MODULES = {
    "panns-cnn14": "stemeval.taggers.panns",
    "passt": "stemeval.taggers.passt",
    "clap": "stemeval.taggers.clap",
}


def torch_hub_checkpoints():
    """torch hub's checkpoint folder, read now (``TORCH_HOME`` may change between calls)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


class UrlWeights:
    """A weights file at ``url``, cached as ``torch_hub_checkpoints()/filename``."""

    def __init__(self, name, title, url, filename, build, size=""):
        self.name, self.title, self.url, self.filename = name, title, url, filename
        self.build = build
        self.size = size  # e.g. "about 330 MB", for people deciding whether to fetch it

    @property
    def path(self):
        return torch_hub_checkpoints() / self.filename

    @property
    def source(self):
        return self.url

    def resolve(self, checkpoint=None):
        """The local file: ``checkpoint`` if given (never downloaded), else the cached file,
        downloaded and checked first where missing."""
        if checkpoint is not None:
            return Path(checkpoint)
        if self.path.exists():
            return self.path
        try:
            return download(self.url, self.path, self.build)
        except Unreachable as error:
            raise UserError(self.offline_message(error)) from None
        except DownloadError as error:
            raise UserError(f"{self.title} download failed: {error}; nothing was saved, "
                            f"run again to retry") from None
        except ValueError as error:
            raise UserError(f"the file downloaded from {self.url} is not usable "
                            f"{self.title} ({error}); it was removed") from None

    def offline_message(self, why):
        return (f"{self.title} missing: {self.filename} is not in {self.path.parent} and "
                f"cannot be downloaded ({why}); on a machine that is online run "
                f"\"{FETCH_COMMAND} {self.name}\" or download {self.url}"
                f"{f' ({self.size})' if self.size else ''}, and copy the file there, or pass "
                f"--checkpoint PATH")

    def load(self, checkpoint=None):
        """``(model, path)``: the checked weights ``checkpoint`` names (None: the default)."""
        path = self.resolve(checkpoint)
        if not path.exists():
            raise UserError(f"{self.title} {path} do not exist")
        hint = (f"; delete it and run \"{FETCH_COMMAND} {self.name}\""
                if checkpoint is None else "")
        try:
            return self.build(path), path
        except ValueError as error:
            raise UserError(f"{self.title} {path} are not usable: {error}{hint}") from None


class HubWeights:
    """A Hugging Face hub model ``repo_id``, kept in the Hugging Face cache."""

    def __init__(self, name, title, repo_id, build, also=()):
        self.name, self.title, self.repo_id, self.build = name, title, repo_id, build
        self.also = tuple(also)  # patterns of files beyond config and weights (a processor's)

    @property
    def path(self):
        return Path(hub_cache_dir()) / ("models--" + self.repo_id.replace("/", "--"))

    @property
    def source(self):
        return f"Hugging Face hub {self.repo_id}"

    def resolve(self, checkpoint=None):
        """The local model folder: ``checkpoint`` (a folder or ``hf:<id>``) or the default id."""
        if checkpoint is not None and not str(checkpoint).startswith(HUB_PREFIX):
            return Path(checkpoint)
        repo_id = str(checkpoint)[len(HUB_PREFIX):].strip() if checkpoint else self.repo_id
        return hub_folder(repo_id, self.also)

    def load(self, checkpoint=None):
        """``(model, folder)``: the checked model ``checkpoint`` names (None: the default)."""
        path = self.resolve(checkpoint)
        if not path.exists():
            raise UserError(f"{self.title} {path} do not exist")
        try:
            return self.build(path), path
        except ValueError as error:
            raise UserError(f"{self.title} {path} are not usable: {error}") from None


def tagger_files():
    """``{name: MODEL_FILE}`` of the tagger modules present in this checkout."""
    found = {}
    for name, module_name in TAGGER_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        found[name] = module.MODEL_FILE
    return found


def fetch(model_file):
    """Download (where missing) and check one tagger's weights; a line saying where they are."""
    _, path = model_file.load()
    return f"{model_file.title} ready: {path}"


def status(model_file):
    """``FileStatus`` of one tagger's default weights (checked when present)."""
    path = model_file.path
    problem = None
    if path.exists():
        try:
            model_file.build(model_file.resolve() if isinstance(model_file, HubWeights) else path)
        except (ValueError, UserError) as error:
            problem = one_line(error)
    return FileStatus(model_file.title, path, model_file.source,
                      f"{FETCH_COMMAND} {model_file.name}", problem)

"""One registry for every tagger's weights: where each comes from, where it is cached, how
it is checked, and the fetch/status of ``python -m AST.models`` for all of them.

The two published files (the AST checkpoint, the speech model) keep their homes and code
(``checkpoint``, ``speech_model``). The other taggers' weights are found from their modules:

- a released file at a URL: the module has ``SOURCE`` (a ``stemeval.taggers.released.Source``:
  title, URL, file name in torch hub's ``checkpoints`` folder) and ``check(path)``, the strict
  loader that raises ``CheckpointError`` (missing or left-over tensors, class count);
- a Hugging Face hub model: the module has ``DEFAULT_MODEL`` (a repo id), optionally
  ``HUB_FILES`` (patterns of files it needs beyond config and weights), and its ``load``
  checks a model folder (weights strictly, labels or processor).
"""

import importlib
from pathlib import Path

from AST.models.checkpoint import hub_folder
from AST.models.sources import FETCH_COMMAND, hub_cache_dir
from AST.models.status import FileStatus
from stemeval.errors import UserError, one_line

# --tagger name -> its module (the AST's weights are the published checkpoint)
TAGGER_MODULES = {
    "panns-cnn14": "stemeval.taggers.panns",
    "passt": "stemeval.taggers.passt",
    "clap": "stemeval.taggers.clap",
}


class ReleasedFile:
    """A tagger's released weights file, cached in torch hub's checkpoint folder."""

    def __init__(self, name, source, check):
        self.name, self.source, self.check = name, source, check
        self.title = source.title

    @property
    def path(self):
        return self.source.default_path()

    def fetch(self):
        from stemeval.taggers.released import load_checked

        _, path = load_checked(self.source, None, self.check)
        return path

    def problem(self):
        try:
            self.check(self.path)
        except ValueError as error:
            return str(error)
        return None

    def origin(self):
        return self.source.url


class HubModel:
    """A tagger's default Hugging Face hub model, kept in the Hugging Face cache."""

    def __init__(self, name, module):
        self.name, self.module = name, module
        self.repo_id = module.DEFAULT_MODEL
        self.title = f"{name} model {self.repo_id}"

    @property
    def path(self):
        return Path(hub_cache_dir()) / ("models--" + self.repo_id.replace("/", "--"))

    def fetch(self):
        folder = hub_folder(self.repo_id, getattr(self.module, "HUB_FILES", ()))
        self.module.load(str(folder), categories=["check"])
        return folder

    def problem(self):
        try:
            self.fetch()
        except UserError as error:
            return one_line(error)
        return None

    def origin(self):
        return f"Hugging Face hub {self.repo_id}"


def tagger_files():
    """``{name: entry}`` for the taggers with their own weights present in this checkout."""
    found = {}
    for name, module_name in TAGGER_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        if hasattr(module, "SOURCE"):
            found[name] = ReleasedFile(name, module.SOURCE, module.check)
        elif hasattr(module, "DEFAULT_MODEL"):
            found[name] = HubModel(name, module)
    return found


def fetch(entry):
    """Download (where missing) and check one tagger's weights; a line saying where they are."""
    return f"{entry.title} ready: {entry.fetch()}"


def status(entry):
    """``FileStatus`` of one tagger's default weights (checked when present)."""
    problem = entry.problem() if entry.path.exists() else None
    return FileStatus(entry.title, entry.path, entry.origin(), f"{FETCH_COMMAND} {entry.name}",
                      problem)

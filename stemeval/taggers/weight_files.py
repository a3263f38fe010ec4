"""Fetch and status of every tagger's weights for ``stemeval weights``, derived from the
tagger registry (``stemeval.taggers.TAGGERS``).

The two published files (the AST checkpoint, the speech model) keep their homes and code
(``published``). The other taggers' default weights are what their registry entry declares:

- a released file at a URL (``sources.Released``), checked by the tagger module's
  ``check(path)``, the strict loader that raises ``CheckpointError`` (missing or left-over
  tensors, class count);
- a Hugging Face hub model (``sources.HubRepo``), checked by the tagger module's ``load``
  (weights strictly, labels or processor).
"""

import importlib
from pathlib import Path

from stemeval.common.errors import UserError, one_line
from stemeval.taggers import TAGGERS
from stemeval.weights.hub import hub_folder
from stemeval.weights.sources import FETCH_COMMAND, HubRepo, Released, hub_cache_dir
from stemeval.weights.status import FileStatus

# Imported inside the functions that use them, so that what needs none of them starts without them:
# stemeval.weights.released.


class ReleasedFile:
    """A tagger's released weights file, cached in torch hub's checkpoint folder."""

    def __init__(self, name, source, check):
        self.name, self.source, self.check = name, source, check
        self.title = source.title

    @property
    def path(self):
        return self.source.default_path()

    def fetch(self):
        from stemeval.weights.released import load_checked

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
    """A tagger's default Hugging Face hub model (a ``HubRepo``), kept in the Hugging Face
    cache; ``load(folder, categories)`` is the tagger's loader, which checks it."""

    def __init__(self, name, repo, load):
        self.name, self.repo, self.load = name, repo, load
        self.repo_id = repo.repo_id
        self.title = f"{name} model {self.repo_id}"

    @property
    def path(self):
        return Path(hub_cache_dir()) / ("models--" + self.repo_id.replace("/", "--"))

    def fetch(self):
        folder = hub_folder(self.repo_id, self.repo.files)
        self.load(str(folder), categories=["check"])
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
    """``{name: entry}`` of the taggers whose default weights are their own (not the AST's);
    each tagger's module (its checks) is imported only when a file is checked."""
    found = {}
    for name, tagger in TAGGERS.items():
        if isinstance(tagger.weights, Released):
            found[name] = ReleasedFile(
                name, tagger.weights,
                lambda path, module=tagger.module: importlib.import_module(module).check(path))
        elif isinstance(tagger.weights, HubRepo):
            found[name] = HubModel(
                name, tagger.weights,
                lambda folder, categories, module=tagger.module:
                    importlib.import_module(module).load(folder, categories=categories))
    return found


def fetch(entry):
    """Download (where missing) and check one tagger's weights; a line saying where they are."""
    return f"{entry.title} ready: {entry.fetch()}"


def status(entry):
    """``FileStatus`` of one tagger's default weights (checked when present)."""
    problem = entry.problem() if entry.path.exists() else None
    return FileStatus(entry.title, entry.path, entry.origin(), f"{FETCH_COMMAND} {entry.name}",
                      problem)

"""``--embeddings PATH``: one embedding per stem, from the same forward pass as its scores.

The file is an ``.npz`` with ``embeddings`` float32 [N, D], ``paths``, ``labels`` and
``groups`` str [N] and ``tagger`` (a str scalar), rows sorted by path. While a run goes,
each embedding is appended to ``PATH.part`` (two ``.npy`` records per stem: path/label/group,
then the vector) before its CSV row is written, so a killed run loses no row: the ``.npz``
is assembled from that log at the end of every run, interrupted or not, and ``--resume``
goes on appending to it (or, when a finished run removed it, starts it from the ``.npz``).
A stem analysed twice keeps its latest embedding.
"""

import os
from pathlib import Path

import numpy as np

from stemeval.errors import UserError

COLUMNS = ("paths", "labels", "groups")


def read_embeddings(path):
    """The npz's arrays as a dict, or UserError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: not an embeddings file ({error})") from None


class EmbeddingStore:
    """Collects embeddings of one run into ``path`` (see the module docstring)."""

    def __init__(self, path, tagger, resume=False):
        self.path = Path(path)
        self.log = Path(f"{path}.part")
        self.tagger = tagger
        if not resume:
            self.log.unlink(missing_ok=True)
        elif not self.log.exists() and self.path.exists():
            self._seed_from(read_embeddings(self.path))
        self._repair()
        try:
            self._handle = open(self.log, "ab")
        except OSError as error:
            raise UserError(f"cannot write the embeddings {self.log}: {error.strerror}") from None

    def _seed_from(self, saved):
        if str(saved.get("tagger")) != self.tagger:
            raise UserError(f"cannot resume the embeddings {self.path}: they are of tagger "
                            f"{saved.get('tagger')}, this run uses {self.tagger}")
        with open(self.log, "wb") as handle:
            for vector, *names in zip(saved["embeddings"], *(saved[c] for c in COLUMNS)):
                _append(handle, names, vector)

    def _repair(self):
        """Cut a half-written last record (a killed run) off the log."""
        if self.log.exists():
            with open(self.log, "r+b") as handle:
                handle.truncate(_records(handle)[1])

    def add(self, stem, embedding):
        _append(self._handle, (stem.path, stem.label, stem.group), embedding)
        self._handle.flush()

    def close(self, complete):
        """Write the npz from the log; a complete run removes the log."""
        self._handle.close()
        with open(self.log, "rb") as handle:
            records, _ = _records(handle)
        latest = {}
        for names, vector in records:
            latest[names[0]] = (names, vector)
        ordered = [latest[key] for key in sorted(latest)]
        arrays = {name: np.array([names[index] for names, _ in ordered], dtype=str)
                  for index, name in enumerate(COLUMNS)}
        vectors = [vector for _, vector in ordered]
        arrays["embeddings"] = (np.stack(vectors) if vectors
                                else np.zeros((0, 0), np.float32)).astype(np.float32)
        part = Path(f"{self.path}.npz.part")
        try:
            with open(part, "wb") as handle:
                np.savez(handle, tagger=np.array(self.tagger), **arrays)
            os.replace(part, self.path)
        except OSError as error:
            part.unlink(missing_ok=True)
            raise UserError(f"cannot write the embeddings {self.path}: {error.strerror}") from None
        if complete:
            self.log.unlink()
        return len(ordered)


def _append(handle, names, vector):
    np.save(handle, np.array([str(name) for name in names], dtype=str))
    np.save(handle, np.asarray(vector, dtype=np.float32))


def _records(handle):
    """``(records, bytes of whole records)`` of a log: ``[(names, vector), ...]``."""
    records, good = [], 0
    handle.seek(0)
    while True:
        try:
            names = np.load(handle, allow_pickle=False)
            vector = np.load(handle, allow_pickle=False)
        except (EOFError, ValueError, OSError):
            return records, good
        records.append((list(names), vector))
        good = handle.tell()

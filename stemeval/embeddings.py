"""``--embeddings PATH``: one embedding per stem, from the same forward pass as its scores.

The file is an ``.npz`` with ``embeddings`` float32 [N, D], ``paths``, ``labels`` and
``groups`` str [N] and ``tagger`` (a str scalar), rows sorted by path. While a run goes,
each embedding is appended to ``PATH.part`` (two ``.npy`` records per stem: path/label/group,
then the vector) before its CSV row is written, so a killed run loses no row: the ``.npz``
is assembled from that log at the end of every run, interrupted or not, and ``--resume``
goes on appending to it (or, when a finished run removed it, starts it from the ``.npz``).
A stem analysed twice keeps its latest embedding. Paths, labels and groups are written as
the results CSV writes them (``results.encode_text``), so both files name a stem alike.
"""

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stemeval.atomic import write_atomically
from stemeval.errors import UserError, one_line
from stemeval.metrics import normalise
from stemeval.record_log import append as _append, records as _records, repair
from stemeval.results import ERROR, encode_text

ARRAYS = ("embeddings", "paths", "labels", "groups", "tagger")
STEM_COLUMNS = ("paths", "labels", "groups")  # one string per stem


def load_arrays(path):
    """The npz's arrays as a dict, or a one-line UserError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:  # BadZipFile: cut short
        raise UserError(f"{path}: not a readable embeddings .npz file ({one_line(error)})") from None


@dataclass
class Embeddings:
    """One embeddings file: a row of ``embeddings`` per stem, with its path, label and track."""

    file: str
    tagger: str
    embeddings: object  # float array [stems, dim]
    paths: list
    labels: list  # normalised as metrics.normalise does
    groups: list


def read_embeddings(path):
    """The embeddings file at ``path``, checked, for the analyses on embeddings (probes,
    set distances); any problem is a one-line UserError."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    arrays = load_arrays(path)
    if "groups" not in arrays:
        raise UserError(f"{path}: no groups (the track of each stem), so the folds cannot be "
                        f"grouped by track; save the embeddings of a dataset that has tracks")
    missing = [key for key in ARRAYS if key not in arrays]
    if missing:
        raise UserError(f"{path}: missing array(s) {', '.join(missing)} (an embeddings file "
                        f"holds {', '.join(ARRAYS)})")
    embeddings = arrays["embeddings"]
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.dtype.kind != "f":
        raise UserError(f"{path}: embeddings must be floats [stems, dim], not "
                        f"{embeddings.dtype} of shape {list(embeddings.shape)}")
    if not np.isfinite(embeddings).all():
        raise UserError(f"{path}: the embeddings hold NaN or infinite values")
    columns = {}
    for key in STEM_COLUMNS:
        values = arrays[key]
        if values.ndim != 1 or len(values) != len(embeddings):
            raise UserError(f"{path}: {key} must hold one value per stem "
                            f"({len(embeddings)}), not shape {list(values.shape)}")
        columns[key] = [str(value) for value in values]
    if len(set(columns["paths"])) != len(columns["paths"]):
        raise UserError(f"{path}: a stem path appears more than once")
    return Embeddings(file=path, tagger=str(arrays["tagger"]), embeddings=embeddings,
                      paths=columns["paths"],
                      labels=[normalise(label) for label in columns["labels"]],
                      groups=[group.strip() for group in columns["groups"]])


def log_path(path):
    """The log a run appends each embedding to before it assembles the ``.npz`` at ``path``."""
    return f"{path}.part"


def check_resume(path, tagger, rows, output):
    """UserError, before anything is written, when a resume with ``--embeddings path``
    would give an ``.npz`` lacking some of the resumed file's ``rows`` (error rows have
    none), as when the file was begun without ``--embeddings``, or with another path."""
    log = Path(log_path(path))
    if log.exists():
        with open(log, "rb") as handle:
            saved = {str(names[0]) for names, _ in _records(handle)[0]}
    elif Path(path).exists():
        arrays = load_arrays(path)
        _check_tagger(arrays, path, tagger)
        saved = {str(name) for name in arrays.get("paths", [])}
    else:
        saved = set()
    missing = [row["path"] for row in rows if row["prediction"] != ERROR
               and row["path"] not in saved]
    if missing:
        raise UserError(f"cannot resume {output} with --embeddings {path}: {len(missing)} of its "
                        f"{len(rows)} rows have no embedding there (e.g. {missing[0]}), as when "
                        f"it was begun without --embeddings; drop --embeddings, or drop "
                        f"--resume to start anew")


def _check_tagger(saved, path, tagger):
    if str(saved.get("tagger")) != tagger:
        raise UserError(f"cannot resume the embeddings {path}: they are of tagger "
                        f"{saved.get('tagger')}, this run uses {tagger}")


class EmbeddingStore:
    """Collects embeddings of one run into ``path`` (see the module docstring)."""

    def __init__(self, path, tagger, resume=False):
        self.path = Path(path)
        self.log = Path(log_path(path))
        self.tagger = tagger
        if not resume:
            self.log.unlink(missing_ok=True)
        elif not self.log.exists() and self.path.exists():
            self._seed_from(load_arrays(self.path))
        self._repair()
        try:
            self._handle = open(self.log, "ab")
        except OSError as error:
            raise UserError(f"cannot write the embeddings {self.log}: {error.strerror}") from None

    def _seed_from(self, saved):
        _check_tagger(saved, self.path, self.tagger)
        with open(self.log, "wb") as handle:
            for vector, *names in zip(saved["embeddings"], *(saved[c] for c in STEM_COLUMNS)):
                _append(handle, names, vector)

    def _repair(self):
        """Cut a half-written last record (a killed run) off the log."""
        if self.log.exists():
            repair(self.log)

    def add(self, stem, embedding):
        _append(self._handle, (encode_text(str(name)) for name in (stem.path, stem.label,
                                                                   stem.group)), embedding)
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
                  for index, name in enumerate(STEM_COLUMNS)}
        vectors = [vector for _, vector in ordered]
        arrays["embeddings"] = (np.stack(vectors) if vectors
                                else np.zeros((0, 0), np.float32)).astype(np.float32)
        try:
            write_atomically(self.path, lambda handle: np.savez(
                handle, tagger=np.array(self.tagger), **arrays), binary=True)
        except OSError as error:
            raise UserError(f"cannot write the embeddings {self.path}: {error.strerror}") from None
        if complete:
            self.log.unlink()
        return len(ordered)

